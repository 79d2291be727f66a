import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { EntityType, EventType } from "../../../lib/audit.ts";

import { openStore } from "../../../lib/storage/open.ts";
import * as audit from "../../../lib/storage/postgres/audit_queries.ts";

import * as leases from "../../../lib/storage/postgres/lease_queries.ts";
import * as licenses from "../../../lib/storage/postgres/license_statements.ts";

import * as status from "../../../lib/storage/postgres/status_queries.ts";
import type { Tx } from "../../../lib/storage/store.ts";
import { tempDir } from "../../helpers.ts";
import { testDatabase } from "../../postgres.ts";

import {
  DAY,
  db,
  plain,
  populate,
  postgresRows,
  sqliteRows,
  T0,
  verified,
  withBoth,
} from "./postgres_support.ts";
Deno.test("PostgreSQL license queries return what SQLite returns for the same rows", async () => {
  await withBoth(async ({ compare }) => {
    const all = await compare("licenses()", (tx) => tx.licenses(), (tx) => licenses.licenses(tx));
    assert.equal(all.length, 7);
    const six = all.find((l) => l.guid === "lic-6")!;
    assert.deepEqual([six.seats, six.seatsUsed, six.claims], [4, 4, 4]);

    for (const poolId of [1, 2, 3, 99]) {
      const filter = { poolId };
      await compare(
        `licenses(${poolId})`,
        (tx) => tx.licenses(filter),
        (tx) => licenses.licenses(tx, filter),
      );
    }
    for (const expiringBy of [T0 - 2 * DAY, T0, T0 + DAY, T0 + 2 * DAY, T0 + 30 * DAY]) {
      for (const filter of [{ expiringBy }, { expiringBy, poolId: 1 }]) {
        await compare(
          `licenses(${JSON.stringify(filter)})`,
          (tx) => tx.licenses(filter),
          (tx) => licenses.licenses(tx, filter),
        );
      }
    }
    for (const guid of [...all.map((l) => l.guid), "lic-6#seat-2", "lic-8", "nope"]) {
      await compare(
        `licenseByGuid(${guid})`,
        (tx) => tx.licenseByGuid(guid),
        (tx) => licenses.licenseByGuid(tx, guid),
      );
      await compare(
        `renewableLicense(${guid})`,
        (tx) => tx.renewableLicense(guid),
        (tx) => licenses.renewableLicense(tx, guid),
      );
    }
    for (let id = 0; id <= 14; id++) {
      await compare(
        `licenseSeats(${id})`,
        (tx) => tx.licenseSeats(id),
        (tx) => licenses.licenseSeats(tx, id),
      );
    }
    const seats = await compare(
      "licenseSeats(6)",
      (tx) => tx.licenseSeats(six.id),
      (tx) => licenses.licenseSeats(tx, six.id),
    );
    assert.deepEqual(seats.map((s) => [s.guid, s.seats, s.seatsUsed]), [
      ["lic-6", 1, 1],
      ["lic-6#seat-2", 1, 1],
      ["lic-6#seat-3", 1, 1],
      ["lic-6#seat-4", 1, 1],
    ]);

    const file = verified(5).certificate;
    for (
      const license of [
        { guid: "lic-2", key: "x", file: new Uint8Array([1]) },
        { guid: "x", key: "KEY-4", file: new Uint8Array([1]) },
        { guid: "x", key: "y", file },
        { guid: "x", key: "y", file: new TextEncoder().encode("seat 3 of license lic-6") },
        { guid: "x", key: "y", file: new Uint8Array([1]) },
      ]
    ) {
      await compare(
        `conflictingLicense(${license.guid}, ${license.key})`,
        (tx) => tx.conflictingLicense(license),
        (tx) => licenses.conflictingLicense(tx, license),
      );
    }
  });
});

Deno.test("PostgreSQL lease queries return what SQLite returns for the same rows", async () => {
  await withBoth(async ({ compare }) => {
    const held = await compare(
      "leaseDetails()",
      (tx) => tx.leaseDetails(),
      (tx) => leases.leaseDetails(tx),
    );
    assert.ok(held.length >= 5, `${held.length} leases`);
    assert.ok(held.some((lease) => lease.seatOf !== null && lease.licenseGuid === "lic-6"));
    const filters = [
      { soonestFirst: true },
      { limit: 0 },
      { limit: 2 },
      { soonestFirst: true, limit: 3 },
      ...[1, 2, 3, 99].map((poolId) => ({ poolId })),
      ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((nodeId) => ({ nodeId })),
      ...[1, 3, 6, 8, 10].map((licenseId) => ({ licenseId })),
      { poolId: 2, licenseId: 6, soonestFirst: true, limit: 2 },
      { poolId: 1, nodeId: 2 },
    ];
    for (const filter of filters) {
      await compare(
        `leaseDetails(${JSON.stringify(filter)})`,
        (tx) => tx.leaseDetails(filter),
        (tx) => leases.leaseDetails(tx, filter),
      );
    }
    for (const now of [T0 - 2 * DAY, T0, T0 + 1_000, T0 + 5_000, T0 + 2 * DAY, T0 + 40 * DAY]) {
      for (const within of [0, 60, DAY, 7 * DAY]) {
        const at = { now, within };
        await compare(
          `poolLicenseCounts(${now}, ${within})`,
          (tx) => tx.poolLicenseCounts(at),
          (tx) => leases.poolLicenseCounts(tx, at),
        );
      }
    }
    const counts = await compare(
      "poolLicenseCounts()",
      (tx) => tx.poolLicenseCounts({ now: T0 + 5_000, within: DAY }),
      (tx) => leases.poolLicenseCounts(tx, { now: T0 + 5_000, within: DAY }),
    );
    assert.deepEqual(counts.map((c) => [c.poolName, c.licenses]), [
      [null, 2],
      ["prod", 3],
      ["seats", 4],
      ["empty", 1],
    ]);
    const pools = await compare("pools()", (tx) => tx.pools(), (tx) => leases.pools(tx));
    assert.deepEqual(pools.map((p) => p.name), ["prod", "seats", "empty"]);
  });
});

Deno.test("PostgreSQL audit and status queries return what SQLite returns for the same rows", async () => {
  await withBoth(async ({ compare, sql }) => {
    const last = await compare(
      "lastAuditId()",
      (tx) => tx.lastAuditId(),
      (tx) => status.lastAuditId(tx),
    );
    assert.ok(last > 20, `${last} audit rows`);
    for (const since of [0, T0 + 150, T0 + 1_000, T0 + 10_000]) {
      // Per second, both engines agree; wider buckets are checked against
      // those seconds, summed (SQLite binds the width as REAL: see the report).
      const seconds = await compare(
        `seatChanges(${since}, 1)`,
        (tx) => tx.seatChanges({ since, bucketSeconds: 1 }),
        (tx) => status.seatChanges(tx, { since, bucketSeconds: 1 }),
      );
      for (const bucketSeconds of [60, 300, 3_600, 0.5]) {
        const width = Math.max(1, Math.trunc(bucketSeconds));
        const buckets = new Map<number, number>();
        for (const { at, delta } of seconds) {
          const bucket = Math.trunc(at / width) * width;
          buckets.set(bucket, (buckets.get(bucket) ?? 0) + delta);
        }
        assert.deepEqual(
          await db(sql, (tx) => status.seatChanges(tx, { since, bucketSeconds })),
          [...buckets].map(([at, delta]) => ({ at, delta })),
          `seatChanges(${since}, ${bucketSeconds})`,
        );
      }
    }
    for (const event of Object.values(EventType)) {
      for (const since of [0, T0 + 500, T0 + 5_000]) {
        await compare(
          `auditEventCounts(${event}, ${since})`,
          (tx) => tx.auditEventCounts(event, since),
          (tx) => audit.auditEventCounts(tx, event, since),
        );
      }
    }
    const denials = await compare(
      "auditEventCounts(denied)",
      (tx) => tx.auditEventCounts(EventType.licenseDenied, 0),
      (tx) => audit.auditEventCounts(tx, EventType.licenseDenied, 0),
    );
    assert.deepEqual(denials, [{ poolId: null, count: 1 }, { poolId: 1, count: 1 }, {
      poolId: 3,
      count: 1,
    }]);

    const queries = [
      {},
      { events: [EventType.licenseLeased, EventType.poolAdded] },
      { events: [] },
      { excludeEvents: [EventType.nodeHeartbeatPing, EventType.userHeartbeatPing] },
      { excludeEvents: [] },
      { entities: [{ entity: EntityType.license, id: 8 }, { entity: EntityType.node, id: 1 }] },
      { entities: [] },
      { entities: [{ entity: EntityType.user, id: 7 }] },
      { poolId: 1 },
      { poolId: 2, events: [EventType.licenseLeased] },
      { since: T0 + 300, until: T0 + 1_000 },
      { afterId: 10 },
      { afterId: 10, since: T0 + 500, poolId: 1 },
    ];
    for (const query of queries) {
      for (const take of ["first", "last"] as const) {
        for (const limit of [null, 0, 1, 5]) {
          const full = { ...query, take, limit };
          await compare(
            `auditLogRows(${JSON.stringify(full)})`,
            (tx) => tx.auditLogRows(full),
            (tx) => audit.auditLogRows(tx, full),
          );
        }
      }
    }
    const removed = await compare(
      "auditLogRows(removed)",
      (tx) => tx.auditLogRows({ events: [EventType.licenseRemoved], take: "first", limit: null }),
      (tx) =>
        audit.auditLogRows(tx, { events: [EventType.licenseRemoved], take: "first", limit: null }),
    );
    // The license is gone: its guid with it.
    assert.deepEqual(removed.map((row) => [row.licenseGuid, row.poolName]), [[null, null]]);
  });
});

Deno.test("PostgreSQL deleteAuditBefore() deletes the rows SQLite deletes, oldest first", async () => {
  await withBoth(async ({ store, path, sql }) => {
    for (const [cutoff, limit] of [[T0 + 100, 3], [T0 + 1_000, 5], [T0 + 1_000, 100], [T0, 10]]) {
      const expected = await store.transaction((tx) => tx.deleteAuditBefore(cutoff, limit));
      const actual = await sql.begin((tx) => audit.deleteAuditBefore(tx, cutoff, limit));
      assert.equal(actual, expected, `deleteAuditBefore(${cutoff}, ${limit})`);
      assert.deepEqual(await postgresRows(sql, "audit_logs"), await sqliteRows(path, "audit_logs"));
    }
  });
});

Deno.test("PostgreSQL license statements write the rows SQLite writes", async () => {
  await withBoth(async ({ store, path, sql }) => {
    const row = {
      guid: "lic-new",
      file: new Uint8Array([0, 1, 2, 255]),
      key: "KEY-NEW",
      poolId: 2,
      fileIssuedAt: T0,
      fileExpiresAt: T0 + DAY,
      expiresAt: null,
      maxMachines: 3,
    };
    const expectedId = await store.transaction((tx) => tx.insertLicense(row, T0 + 9_000));
    const id = await sql.begin((tx) => licenses.insertLicense(tx, row, T0 + 9_000));
    assert.equal(id, expectedId);
    await store.transaction((tx) => tx.insertSeats(id, 3, T0 + 9_001));
    await sql.begin((tx) => licenses.insertSeats(tx, id, 3, T0 + 9_001));
    assert.deepEqual(await postgresRows(sql, "licenses"), await sqliteRows(path, "licenses"));

    const renewal = {
      file: new Uint8Array([9, 9]),
      fileIssuedAt: T0 + 1,
      fileExpiresAt: null,
      expiresAt: T0 + 5 * DAY,
      maxUsers: 4,
    };
    await store.transaction((tx) => tx.renewLicense(id, renewal));
    await sql.begin((tx) => licenses.renewLicense(tx, id, renewal));
    assert.deepEqual(await postgresRows(sql, "licenses"), await sqliteRows(path, "licenses"));

    const seatRows = await postgresRows(sql, "licenses");
    assert.deepEqual(
      seatRows.slice(-4).map((r) => {
        const l = r as { guid: string; key: string; file: Uint8Array; seat_of: number | null };
        return [l.guid, l.key, new TextDecoder().decode(l.file), l.seat_of];
      }),
      [
        ["lic-new", "KEY-NEW", "\u0009\u0009", null],
        ["lic-new#seat-2", "KEY-NEW#seat-2", "seat 2 of license lic-new", id],
        ["lic-new#seat-3", "KEY-NEW#seat-3", "seat 3 of license lic-new", id],
        ["lic-new#seat-4", "KEY-NEW#seat-4", "seat 4 of license lic-new", id],
      ],
    );

    // A leased multi-seat license (lic-6), and the new one.
    for (const guid of ["lic-6", "lic-new"]) {
      const license = (await store.read((tx) => tx.licenseByGuid(guid)))!;
      await store.transaction((tx) => tx.deleteLicense(license.id));
      await sql.begin((tx) => licenses.deleteLicense(tx, license.id));
      assert.deepEqual(await postgresRows(sql, "licenses"), await sqliteRows(path, "licenses"));
    }
  });
});

Deno.test("PostgreSQL queries of an empty database return what SQLite returns", async () => {
  await withBoth(async ({ compare }) => {
    assert.equal(
      await compare("lastAuditId()", (tx) => tx.lastAuditId(), (tx) => status.lastAuditId(tx)),
      0,
    );
    const range = { since: 0, bucketSeconds: 60 };
    await compare(
      "seatChanges()",
      (tx) => tx.seatChanges(range),
      (tx) => status.seatChanges(tx, range),
    );
    const at = { now: T0, within: DAY };
    await compare(
      "poolLicenseCounts()",
      (tx) => tx.poolLicenseCounts(at),
      (tx) => leases.poolLicenseCounts(tx, at),
    );
    await compare("pools()", (tx) => tx.pools(), (tx) => leases.pools(tx));
    await compare("licenses()", (tx) => tx.licenses(), (tx) => licenses.licenses(tx));
    await compare("leaseDetails()", (tx) => tx.leaseDetails(), (tx) => leases.leaseDetails(tx));
    const query = { take: "last", limit: 10 } as const;
    await compare(
      "auditLogRows()",
      (tx) => tx.auditLogRows(query),
      (tx) => audit.auditLogRows(tx, query),
    );
  }, () => Promise.resolve());
});

/**
 * The SQL statements of the README's "Audit log" section, in order: each
 * with its leading `--` comment as its name.
 */
async function readmeAuditQueries(): Promise<{ name: string; text: string }[]> {
  const readme = await Deno.readTextFile(new URL("../../../README.md", import.meta.url));
  const section = readme.split("\n## Audit log\n")[1].split("\n## ")[0];
  const blocks = [...section.matchAll(/```sql\n([\s\S]*?)```/g)].map((match) => match[1]);
  return blocks.join("\n").split(";").map((text) => text.trim()).filter((text) => text !== "")
    .map((text) => ({ name: text.split("\n")[0].replace(/^-- /, ""), text }));
}

/**
 * What a statement of the README needs on PostgreSQL: `datetime(…,
 * 'unixepoch')` as the same UTC text (whatever the session's DateStyle),
 * `IFNULL` as `COALESCE`.
 */
function postgresVariant(text: string): string {
  return text
    .replace(
      /datetime\(([\w.]+), 'unixepoch'\)/g,
      "to_char(to_timestamp($1) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')",
    )
    .replaceAll("IFNULL(", "COALESCE(");
}

Deno.test("the README's audit queries give SQLite's rows on PostgreSQL, with the variants", async () => {
  const queries = await readmeAuditQueries();
  assert.deepEqual(queries.map((query) => query.name), [
    "recent events",
    "recently leased licenses",
    "entire history in chronological order",
    "seats held by users right now",
  ]);
  await withBoth(async ({ path, sql }) => {
    const sqlite = new DatabaseSync(path, { readOnly: true });
    try {
      for (const { name, text } of queries) {
        const expected = plain(sqlite.prepare(text).all());
        const rows = plain([...await sql.unsafe(postgresVariant(text))]);
        assert.ok(expected.length > 0, name);
        assert.deepEqual(rows, expected, name);
      }
    } finally {
      sqlite.close();
    }
  });
});

Deno.test("a PostgreSQL store answers the read methods as a SQLite store after the same operations", async () => {
  await using dir = await tempDir();
  await using db = await testDatabase();
  const sqlite = await openStore(`${dir.path}/relay.sqlite`, { now: T0 });
  const postgres = await openStore(db.url, { now: T0 });
  try {
    await populate(sqlite);
    await populate(postgres);
    const reads: [string, (tx: Tx) => Promise<unknown>][] = [
      ["licenses()", (tx) => tx.licenses()],
      ["licenses(pool 2)", (tx) => tx.licenses({ poolId: 2 })],
      ["licenses(expiring)", (tx) => tx.licenses({ expiringBy: T0 + 2 * DAY })],
      ["licenseByGuid(lic-6)", (tx) => tx.licenseByGuid("lic-6")],
      ["licenseSeats(lic-6)", async (tx) => tx.licenseSeats((await tx.licenseByGuid("lic-6"))!.id)],
      ["renewableLicense(lic-3)", (tx) => tx.renewableLicense("lic-3")],
      ["leaseDetails()", (tx) => tx.leaseDetails()],
      ["leaseDetails(soonest)", (tx) => tx.leaseDetails({ soonestFirst: true, limit: 4 })],
      ["poolLicenseCounts()", (tx) => tx.poolLicenseCounts({ now: T0 + 5_000, within: DAY })],
      ["pools()", (tx) => tx.pools()],
      ["auditEventCounts()", (tx) => tx.auditEventCounts(EventType.licenseDenied, 0)],
      ["auditLogRows()", (tx) => tx.auditLogRows({ take: "first", limit: null })],
      ["auditLogRows(last)", (tx) => tx.auditLogRows({ poolId: 2, take: "last", limit: 3 })],
      ["lastAuditId()", (tx) => tx.lastAuditId()],
      ["seatChanges()", (tx) => tx.seatChanges({ since: 0, bucketSeconds: 1 })],
    ];
    for (const [label, read] of reads) {
      assert.deepEqual(plain([await postgres.read(read)]), plain([await sqlite.read(read)]), label);
    }
    const prune = (tx: Tx) => tx.deleteAuditBefore(T0 + 500, 7);
    assert.equal(await postgres.transaction(prune), await sqlite.transaction(prune));
    const all = (tx: Tx) => tx.auditLogRows({ take: "first", limit: null });
    assert.deepEqual(plain(await postgres.read(all)), plain(await sqlite.read(all)));
  } finally {
    await sqlite.close();
    await postgres.close();
  }
});
