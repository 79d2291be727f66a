import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { EntityType, EventType } from "../../../lib/audit.ts";
import { recordDenial } from "../../../lib/denials.ts";
import { userHolder } from "../../../lib/holders.ts";
import { claim, type LeasePolicy, reap, release } from "../../../lib/leases.ts";
import type { LicenseFile } from "../../../lib/license_file.ts";
import { addLicenses, removeLicenses, type VerifiedLicense } from "../../../lib/licenses.ts";
import { openStore } from "../../../lib/storage/open.ts";
import * as audit from "../../../lib/storage/postgres/audit_queries.ts";
import type { Sql, TxSql } from "../../../lib/storage/postgres/connect.ts";
import * as leases from "../../../lib/storage/postgres/lease_queries.ts";
import * as licenses from "../../../lib/storage/postgres/license_statements.ts";
import { migratePostgres } from "../../../lib/storage/postgres/migrate.ts";
import * as status from "../../../lib/storage/postgres/status_queries.ts";
import type { Store, Tx } from "../../../lib/storage/store.ts";
import { tempDir } from "../../helpers.ts";
import { testDatabase } from "../../postgres.ts";

const T0 = 1_800_000_000;
const DAY = 86_400;
const HEARTBEATS: LeasePolicy = { ttl: 600, heartbeats: true, strategy: "fifo" };
const NO_HEARTBEATS: LeasePolicy = { ttl: 60, heartbeats: false, strategy: "lifo" };
const TABLES = ["pools", "nodes", "licenses", "audit_logs"] as const;

/** A license file as verification leaves it, without a certificate to verify. */
function verified(
  n: number,
  dates: { issued?: number; fileExpiry?: number; expiry?: number; seats?: boolean } = {},
): VerifiedLicense {
  const date = (seconds: number | undefined) =>
    seconds === undefined ? null : new Date(seconds * 1e3);
  const license: LicenseFile = {
    id: `lic-${n}`,
    key: `KEY-${n}`,
    algorithm: "base64+ed25519",
    expiry: date(dates.expiry),
    issued: date(dates.issued ?? T0 - DAY)!,
    fileExpiry: date(dates.fileExpiry),
    ttl: null,
    entitlements: [],
    maxMachines: dates.seats ? 5 : null,
    maxUsers: null,
  };
  const certificate = new TextEncoder().encode(`certificate ${n} ${dates.issued ?? 0}`);
  return { source: `lic-${n}.lic`, certificate, license };
}

/**
 * Rows of every kind, written through the lease and license operations:
 * licenses with and without pools and expiries, a multi-seat license, nodes
 * and users that claim, extend, release and expire, a renewal and a removal.
 */
async function populate(store: Store): Promise<void> {
  await addLicenses(store, [verified(1), verified(2, { fileExpiry: T0 + 2 * DAY })], {
    now: T0,
  });
  await addLicenses(store, [
    verified(3, { expiry: T0 + 10 * DAY }),
    verified(4, { fileExpiry: T0 + 3 * DAY, expiry: T0 + DAY }),
    verified(5),
  ], { pool: "prod", now: T0 + 10 });
  await addLicenses(store, [verified(6, { seats: true })], {
    pool: "seats",
    now: T0 + 20,
    seats: 4,
  });
  await addLicenses(store, [verified(7, { expiry: T0 - DAY })], { pool: "empty", now: T0 + 30 });

  const at = (now: number, policy = HEARTBEATS) => ({ now, policy });
  await claim(store, "node-a", { pool: null, ...at(T0 + 100) });
  await claim(store, "node-b", { pool: "prod", ...at(T0 + 200) });
  await claim(store, "node-b", { pool: "prod", ...at(T0 + 230) }); // extended
  await claim(store, "node-c", { pool: "prod", ...at(T0 + 300, NO_HEARTBEATS) });
  await claim(store, "node-d", { pool: "prod", ...at(T0 + 400) });
  // Exhausted: the server records the denial.
  assert.equal((await claim(store, "node-h", { pool: "prod", ...at(T0 + 450) })).kind, "exhausted");
  await recordDenial(store, "node-h", { pool: "prod", now: T0 + 450 });
  await recordDenial(store, "node-z", { pool: null, now: T0 + 460 });
  await claim(store, "seat-1", { pool: "seats", ...at(T0 + 500) });
  await claim(store, "seat-2", { pool: "seats", ...at(T0 + 600) });
  await claim(store, userHolder("ann@example.com"), { pool: "seats", ...at(T0 + 700) });
  await release(store, "node-a", { pool: null, ...at(T0 + 800) });
  await claim(store, "node-e", { pool: null, ...at(T0 + 900) });
  await claim(store, "node-f", { pool: "empty", ...at(T0 + 950) }); // expired only
  await recordDenial(store, "node-f", { pool: "empty", now: T0 + 950 });
  await reap(store, { now: T0 + 1_000, ttl: 600, limit: 1 }); // one of the expired leases
  await claim(store, "seat-3", { pool: "seats", ...at(T0 + 1_200) });
  await addLicenses(store, [verified(3, { issued: T0, expiry: T0 + 20 * DAY })], {
    pool: "prod",
    now: T0 + 3_000,
  }); // renewed
  await addLicenses(store, [verified(8)], { now: T0 + 3_100 });
  await removeLicenses(store, ["lic-8"], { now: T0 + 3_200 });
  await claim(store, "node-g", { pool: null, ...at(T0 + 4_000, NO_HEARTBEATS) });
}

/** A PostgreSQL database at the current schema with the same rows as the SQLite one at `path`. */
async function copyRows(path: string, sql: Sql): Promise<void> {
  await migratePostgres(sql, { name: "test", now: T0 });
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    for (const table of TABLES) {
      const rows = db.prepare(`SELECT * FROM ${table} ORDER BY id`).all().map((row) => ({
        ...row,
      }));
      if (rows.length > 0) await sql`INSERT INTO ${sql(table)} ${sql(rows as never)}`;
      // Later inserts take the ids SQLite's would (AUTOINCREMENT never reuses one).
      const [next] = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = ?").all(table);
      if (next) {
        await sql.unsafe(`SELECT setval(pg_get_serial_sequence('${table}', 'id'), $1)`, [
          next.seq as number,
        ]);
      }
    }
  } finally {
    db.close();
  }
}

/** Every row of `table` in id order, with plain objects and bytes (see {@link plain}). */
function sqliteRows(path: string, table: string): unknown[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return plain(db.prepare(`SELECT * FROM ${table} ORDER BY id`).all());
  } finally {
    db.close();
  }
}

/** {@link sqliteRows} of a PostgreSQL database. */
async function postgresRows(sql: Sql, table: string): Promise<unknown[]> {
  return plain([...await sql.unsafe(`SELECT * FROM ${table} ORDER BY id`)]);
}

/**
 * `value` with plain objects and arrays (node:sqlite's rows have no
 * prototype, postgres.js's lists are an Array subclass), bytes as
 * Uint8Array (postgres.js reads a Buffer) and BOOLEAN as 0/1.
 */
function plain(value: unknown): unknown[] {
  const convert = (x: unknown): unknown => {
    if (x instanceof Uint8Array) return new Uint8Array(x);
    if (Array.isArray(x)) return x.map(convert);
    if (typeof x === "boolean") return x ? 1 : 0;
    if (x !== null && typeof x === "object") {
      return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, convert(v)]));
    }
    return x;
  };
  return convert(value) as unknown[];
}

/** `fn`'s result in a transaction of `sql`, as plain values. */
async function db<T>(sql: Sql, fn: (tx: TxSql) => Promise<T>): Promise<unknown> {
  return plain([await sql.begin(fn)])[0];
}

/** Both engines with the populated rows; `compare` runs a read on each and asserts equality. */
async function withBoth(
  fn: (engines: {
    store: Store;
    path: string;
    sql: Sql;
    compare: <T>(
      label: string,
      onSqlite: (tx: Tx) => Promise<T>,
      onPostgres: (tx: TxSql) => Promise<T>,
    ) => Promise<T>;
  }) => Promise<void>,
  rows: (store: Store) => Promise<void> = populate,
): Promise<void> {
  await using dir = await tempDir();
  await using db = await testDatabase();
  const path = `${dir.path}/relay.sqlite`;
  const store = await openStore(path, { now: T0 });
  try {
    await rows(store);
    await copyRows(path, db.sql);
    const compare = async <T>(
      label: string,
      onSqlite: (tx: Tx) => Promise<T>,
      onPostgres: (tx: TxSql) => Promise<T>,
    ): Promise<T> => {
      const expected = await store.read(onSqlite);
      const actual = await db.sql.begin(onPostgres) as T;
      assert.deepEqual(plain([actual]), plain([expected]), label);
      return actual;
    };
    await fn({ store, path, sql: db.sql, compare });
  } finally {
    await store.close();
  }
}

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
