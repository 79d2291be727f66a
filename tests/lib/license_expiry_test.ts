/**
 * Claims never hand out a license whose file (`meta.expiry`) or own expiry
 * has passed: fifo and lifo skip them, `rand` stays uniform among the valid
 * ones, a pool with only expired free licenses answers `expired_only`, and a
 * node whose leased file expired is moved to a valid license.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { fileState, isValidAt, validUntil } from "../../lib/expiry.ts";
import { claim, type ClaimResult, type LeasePolicy, release } from "../../lib/leases.ts";
import { listLicenses } from "../../lib/licenses.ts";
import { openStore, type StoreOptions } from "../../lib/storage/open.ts";
import type { Store } from "../../lib/storage/store.ts";
import { auditTrail, FREE_COUNT_MISMATCHES, prng, query, tempDir } from "../helpers.ts";

const T0 = 1_800_000_000;
/** Leases outlive these tests' clock moves, so only file expiries play a part. */
const FIFO: LeasePolicy = { ttl: 3600, heartbeats: true, strategy: "fifo" };
const NO_FSYNC: Partial<StoreOptions> = { pragmas: { synchronous: "OFF" } };

/** A license to insert: pool ("" for none), file expiry, own expiry (unix s, null: never). */
interface Spec {
  pool?: string;
  file?: number | null;
  own?: number | null;
}

/** A store holding `specs` as licenses `lic-1` … (`KEY-1` …), inserted in order. */
async function withLicenses(
  specs: Spec[],
  fn: (store: Store, path: string) => Promise<void>,
  options: Partial<StoreOptions> = {},
) {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = await openStore(path, { now: T0, ...options });
  try {
    await store.transaction(async (tx) => {
      const pools = new Map<string, number>();
      for (const [i, spec] of specs.entries()) {
        let poolId: number | null = null;
        if (spec.pool) {
          poolId = pools.get(spec.pool) ?? (await tx.insertPool(spec.pool, T0)).id;
          pools.set(spec.pool, poolId);
        }
        await tx.insertLicense({
          guid: `lic-${i + 1}`,
          file: new TextEncoder().encode(`file-${i + 1}`),
          key: `KEY-${i + 1}`,
          poolId,
          fileIssuedAt: T0 - 86_400,
          fileExpiresAt: spec.file ?? null,
          expiresAt: spec.own ?? null,
        }, T0);
      }
    });
    await fn(store, path);
  } finally {
    await store.close();
  }
}

function keyOf(result: ClaimResult): string | undefined {
  return result.kind === "created" ? result.licenseKey : undefined;
}

Deno.test("validUntil(), isValidAt() and fileState(): the earlier expiry counts, and at it the license is expired", () => {
  const cases: [Spec, number | null][] = [
    [{ file: null, own: null }, null],
    [{ file: 100, own: null }, 100],
    [{ file: null, own: 50 }, 50],
    [{ file: 100, own: 50 }, 50],
    [{ file: 40, own: 50 }, 40],
  ];
  for (const [spec, until] of cases) {
    const dates = { fileExpiresAt: spec.file ?? null, expiresAt: spec.own ?? null };
    assert.equal(validUntil(dates), until, JSON.stringify(spec));
    if (until === null) {
      assert.equal(isValidAt(dates, 1e12), true);
      assert.equal(fileState(dates, { now: 1e12, within: 1e6 }), "valid");
      continue;
    }
    assert.equal(isValidAt(dates, until - 1), true);
    assert.equal(isValidAt(dates, until), false, "valid while the expiry is after now");
    assert.equal(fileState(dates, { now: until - 11, within: 10 }), "valid");
    assert.equal(fileState(dates, { now: until - 10, within: 10 }), "expiring");
    assert.equal(fileState(dates, { now: until - 1, within: 10 }), "expiring");
    assert.equal(fileState(dates, { now: until, within: 10 }), "expired");
  }
});

Deno.test("claim() with fifo and lifo skips licenses whose file or own expiry has passed", async () => {
  await withLicenses([
    { file: T0 - 1 }, // 1: file expired
    { own: T0 }, // 2: license expires exactly now
    { file: T0 + 10, own: T0 + 5 }, // 3: valid until T0 + 5
    { file: T0 + 86_400 }, // 4: valid
    { file: T0 - 100, own: T0 + 100 }, // 5: file expired, license valid
  ], async (store, path) => {
    const lifo = { ...FIFO, strategy: "lifo" as const };
    assert.equal(keyOf(await claim(store, "a", { pool: null, now: T0, policy: FIFO })), "KEY-3");
    assert.equal(keyOf(await claim(store, "b", { pool: null, now: T0, policy: lifo })), "KEY-4");
    // Only licenses 1, 2 and 5 are free: all expired.
    assert.deepEqual(await claim(store, "c", { pool: null, now: T0, policy: FIFO }), {
      kind: "expired_only",
      retryAt: T0 + 3600,
    });
    assert.deepEqual(await claim(store, "c", { pool: null, now: T0, policy: lifo }), {
      kind: "expired_only",
      retryAt: T0 + 3600,
    });
    assert.deepEqual(
      query(path, "SELECT fingerprint FROM nodes ORDER BY id"),
      [{ fingerprint: "a" }, { fingerprint: "b" }],
      "a node that got nothing is not activated",
    );
    assert.deepEqual(auditTrail(path).map(([event, , id]) => `${event} ${id}`), [
      "node.activated 1",
      "license.leased 3",
      "node.heartbeat_ping 1",
      "node.activated 2",
      "license.leased 4",
      "node.heartbeat_ping 2",
    ]);
  });
});

Deno.test("claim() answers exhausted when nothing is free, expired_only when only expired licenses are free", async () => {
  await withLicenses([{ pool: "prod", file: T0 + 100 }, { pool: "prod", file: T0 + 200 }], async (
    store,
  ) => {
    const options = { pool: "prod", policy: FIFO };
    assert.equal(keyOf(await claim(store, "a", { ...options, now: T0 })), "KEY-1");
    assert.equal(keyOf(await claim(store, "b", { ...options, now: T0 })), "KEY-2");
    assert.deepEqual(await claim(store, "c", { ...options, now: T0 + 1 }), {
      kind: "exhausted",
      retryAt: T0 + 3600,
    });
    assert.deepEqual(await release(store, "a", { ...options, now: T0 + 2 }), {
      kind: "released",
      licenseId: "lic-1",
    });
    // License 1 is free but its file expires at T0 + 100.
    assert.equal(keyOf(await claim(store, "c", { ...options, now: T0 + 99 })), "KEY-1");
    await release(store, "c", { ...options, now: T0 + 99 });
    assert.deepEqual(await claim(store, "c", { ...options, now: T0 + 100 }), {
      kind: "expired_only",
      retryAt: T0 + 3600,
    });
  });
});

Deno.test("claim() reaps an expired lease to find a valid license before answering expired_only", async () => {
  await withLicenses([{ file: T0 + 86_400 }, { file: T0 + 30 }], async (store, path) => {
    const options = { pool: null, policy: { ...FIFO, ttl: 60 } };
    assert.equal(keyOf(await claim(store, "a", { ...options, now: T0 })), "KEY-1");
    // At T0 + 60 license 2 (free) has expired and a's lease on license 1 too.
    assert.equal(keyOf(await claim(store, "b", { ...options, now: T0 + 60 })), "KEY-1");
    assert.deepEqual(auditTrail(path).slice(3).map(([event, , id]) => `${event} ${id}`), [
      "license.lease_expired 1",
      "node.culled 1",
      "node.activated 2",
      "license.leased 1",
      "node.heartbeat_ping 2",
    ]);
  });
});

Deno.test("a heartbeat on a lease whose file expired moves the node to a valid license", async (t) => {
  for (const heartbeats of [true, false]) {
    await t.step(heartbeats ? "with heartbeats" : "with --no-heartbeats", async () => {
      await withLicenses([{ file: T0 + 100 }, { own: T0 + 86_400 }], async (store, path) => {
        const options = { pool: null, policy: { ...FIFO, ttl: 300, heartbeats } };
        assert.equal(keyOf(await claim(store, "a", { ...options, now: T0 })), "KEY-1");
        const moved = await claim(store, "a", { ...options, now: T0 + 100 });
        assert.equal(keyOf(moved), "KEY-2");
        assert.equal(
          moved.kind === "created" && new TextDecoder().decode(moved.licenseFile),
          "file-2",
        );
        assert.deepEqual(auditTrail(path).slice(3), [
          ["license.released", "license", 1, null],
          ["license.leased", "license", 2, null],
          ["node.heartbeat_ping", "node", 1, null],
        ]);
        assert.deepEqual(
          query(path, "SELECT id, node_id, claims, last_released_at FROM licenses ORDER BY id"),
          [
            { id: 1, node_id: null, claims: 1, last_released_at: T0 + 100 },
            { id: 2, node_id: 1, claims: 1, last_released_at: null },
          ],
        );
        assert.deepEqual(
          query(
            path,
            "SELECT fingerprint, last_heartbeat_at, lease_expires_at, deactivated_at FROM nodes",
          ),
          [{
            fingerprint: "a",
            last_heartbeat_at: T0 + 100,
            lease_expires_at: heartbeats ? T0 + 400 : null,
            deactivated_at: null,
          }],
        );
        if (heartbeats) {
          assert.deepEqual(await claim(store, "a", { ...options, now: T0 + 101 }), {
            kind: "extended",
            expiresAt: T0 + 401,
            license: { guid: "lic-2", fileExpiresAt: null },
          });
        } else {
          assert.deepEqual(await claim(store, "a", { ...options, now: T0 + 101 }), {
            kind: "conflict",
          });
        }
        assert.deepEqual(query(path, FREE_COUNT_MISMATCHES), []);
      });
    });
  }
});

Deno.test("a heartbeat on an expired file with no valid license left: the license is released, the node deactivated, 410", async (t) => {
  await t.step("only expired licenses left", async () => {
    await withLicenses([{ own: T0 + 100 }, { file: T0 + 50 }], async (store, path) => {
      const options = { pool: null, policy: FIFO };
      assert.equal(keyOf(await claim(store, "a", { ...options, now: T0 })), "KEY-1");
      assert.deepEqual(await claim(store, "a", { ...options, now: T0 + 100 }), {
        kind: "expired_only",
        retryAt: undefined,
      });
      assert.deepEqual(auditTrail(path).slice(3), [
        ["license.released", "license", 1, null],
        ["node.deactivated", "node", 1, null],
      ]);
      assert.deepEqual(query(path, "SELECT node_id FROM licenses ORDER BY id"), [
        { node_id: null },
        { node_id: null },
      ]);
      assert.deepEqual(query(path, "SELECT deactivated_at FROM nodes"), [{
        deactivated_at: T0 + 100,
      }]);
      // The node is gone: a DELETE finds nothing.
      assert.deepEqual(await release(store, "a", { ...options, now: T0 + 101 }), {
        kind: "not_found",
      });
    });
  });
  await t.step("every valid license leased", async () => {
    await withLicenses([{ file: T0 + 100 }, { file: T0 + 86_400 }], async (store) => {
      const options = { pool: null, policy: FIFO };
      await claim(store, "a", { ...options, now: T0 });
      await claim(store, "b", { ...options, now: T0 });
      // a's license 1 is released and is then the only free one: expired.
      assert.deepEqual(await claim(store, "a", { ...options, now: T0 + 100 }), {
        kind: "expired_only",
        retryAt: T0 + 3600,
      });
    });
  });
  await t.step("in another pool the lease is a conflict, as before", async () => {
    await withLicenses([{ pool: "dev", file: T0 + 100 }, { pool: "prod" }], async (store) => {
      await claim(store, "a", { pool: "dev", now: T0, policy: FIFO });
      assert.deepEqual(await claim(store, "a", { pool: "prod", now: T0 + 100, policy: FIFO }), {
        kind: "conflict",
      });
    });
  });
});

Deno.test("claim() with rand is uniform among the valid free licenses only", async (t) => {
  const RAND = { pool: null, policy: { ...FIFO, strategy: "rand" as const } };
  // 99.99th percentiles of chi-square by degrees of freedom.
  const LIMIT: Record<number, number> = { 2: 18.4, 3: 21.1, 19: 50.0 };
  for (
    const [label, total, leased, expired] of [
      // 30 free in 64 ids, 10 of them expired: rejection sampling over the id range.
      ["a dense pool (sampling)", 40, 10, (j: number) => j % 3 === 0],
      // 5 free in 64 ids, 1 expired: the free_counts walk.
      ["a sparse pool (walk)", 40, 35, (j: number) => j === 0],
      // 24 free in 256 ids, 21 expired: all 8 walks miss a third of the
      // time, and the valid ones are indexed instead.
      ["a sparse pool of mostly expired licenses (exact)", 200, 176, (j: number) => j % 8 !== 0],
    ] as const
  ) {
    await t.step(label, async () => {
      // Leased, then free: expired (file or own expiry, alternately) or valid.
      const specs: Spec[] = Array.from({ length: total }, (_, i) => {
        const j = i - leased;
        if (j < 0 || !expired(j)) return { file: T0 + 86_400 };
        return j % 2 === 0 ? { file: T0 - 10 } : { own: T0 };
      });
      const valid = specs.map((spec, i) => ({ spec, key: `KEY-${i + 1}` }))
        .filter(({ spec }, i) =>
          i >= leased &&
          isValidAt({ fileExpiresAt: spec.file ?? null, expiresAt: spec.own ?? null }, T0)
        )
        .map(({ key }) => key);
      await withLicenses(specs, async (store, path) => {
        const holders = { pool: null, now: T0, policy: FIFO };
        for (let i = 0; i < leased; i++) {
          assert.equal(keyOf(await claim(store, `holder${i}`, holders)), `KEY-${i + 1}`);
        }
        const draws = 300 * valid.length;
        const random = prng(total + leased);
        const observed = new Map<string, number>();
        for (let i = 0; i < draws; i++) {
          const key = keyOf(await claim(store, `m${i}`, { ...RAND, now: T0, random }));
          assert.ok(key !== undefined, "a valid license is free");
          observed.set(key, (observed.get(key) ?? 0) + 1);
          await release(store, `m${i}`, { ...RAND, now: T0 });
        }
        assert.deepEqual([...observed.keys()].sort(), [...valid].sort(), "only valid ones drawn");
        const expected = draws / valid.length;
        const chiSquare = [...observed.values()].reduce(
          (sum, o) => sum + (o - expected) ** 2 / expected,
          0,
        );
        const limit = LIMIT[valid.length - 1];
        assert.ok(limit !== undefined, `a limit for ${valid.length - 1} degrees of freedom`);
        assert.ok(chiSquare < limit, `chi-square ${chiSquare} over ${valid.length} licenses`);
        assert.deepEqual(query(path, FREE_COUNT_MISMATCHES), []);
      }, NO_FSYNC);
    });
  }
});

Deno.test("Tx: the valid free licenses, counted and indexed exactly", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = await openStore(path, { now: T0 });
  try {
    const prod = (await store.transaction((tx) => tx.insertPool("prod", T0))).id;
    const db = new DatabaseSync(path);
    const insert = db.prepare(
      `INSERT INTO licenses (id, guid, file, key, pool_id, file_expires_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    const random = prng(5);
    const ids = new Set<number>();
    while (ids.size < 400) ids.add(1 + Math.floor(random() ** 3 * 3_000_000));
    for (const id of ids) {
      const roll = random();
      const file = roll < 0.25 ? null : T0 - 500 + Math.floor(random() * 1000);
      const own = roll > 0.8 ? T0 - 500 + Math.floor(random() * 1000) : null;
      insert.run(
        id,
        `g${id}`,
        new TextEncoder().encode(`f${id}`),
        `K${id}`,
        id % 3 ? null : prod,
        file,
        own,
      );
    }
    db.exec("INSERT INTO nodes (fingerprint) VALUES ('holder')");
    db.exec(
      "UPDATE licenses SET node_id = 1 WHERE id = (SELECT min(id) FROM licenses WHERE id % 7 = 1)",
    );
    db.close();
    for (const poolId of [null, prod]) {
      for (const now of [T0 - 600, T0, T0 + 600]) {
        const rows = query<
          { id: number; file_expires_at: number | null; expires_at: number | null }
        >(
          path,
          `SELECT id, file_expires_at, expires_at FROM licenses
           WHERE pool_id IS ? AND node_id IS NULL ORDER BY id`,
          poolId,
        );
        const valid = rows.filter((row) =>
          isValidAt({ fileExpiresAt: row.file_expires_at, expiresAt: row.expires_at }, now)
        ).map((row) => row.id);
        await store.read(async (tx) => {
          assert.equal(await tx.validFreeLicenseCount(poolId, now), valid.length);
          assert.equal(await tx.hasValidFreeLicense(poolId, now), valid.length > 0);
          const found = [];
          for (let index = 0; index < valid.length; index++) {
            found.push(await tx.validFreeLicenseAt(poolId, { index, validAt: now }));
          }
          assert.deepEqual(
            [...found].sort((a, b) => a! - b!),
            valid,
            "each valid one exactly once",
          );
          assert.equal(
            await tx.validFreeLicenseAt(poolId, { index: valid.length, validAt: now }),
            undefined,
          );
          assert.equal(
            await tx.firstFreeLicense(poolId, { order: "first", validAt: now }),
            valid[0],
          );
          assert.equal(
            await tx.firstFreeLicense(poolId, { order: "last", validAt: now }),
            valid.at(-1),
          );
          for (const row of rows.slice(0, 40)) {
            assert.equal(
              await tx.isFreeLicense(poolId, { id: row.id, validAt: now }),
              valid.includes(row.id),
            );
          }
        });
      }
    }
  } finally {
    await store.close();
  }
});

Deno.test("listLicenses() with expiringBy lists the licenses no longer valid at that moment", async () => {
  await withLicenses([
    { file: T0 + 100 },
    { pool: "prod", own: T0 + 50, file: T0 + 1000 },
    { pool: "prod" },
    { pool: "prod", file: T0 - 1 },
    { file: T0 + 101 },
  ], async (store) => {
    const guids = async (options: { pool?: string; expiringBy?: number }) =>
      (await listLicenses(store, options)).map((license) => license.guid);
    assert.deepEqual(await guids({ expiringBy: T0 + 100 }), ["lic-1", "lic-2", "lic-4"]);
    assert.deepEqual(await guids({ pool: "prod", expiringBy: T0 + 100 }), ["lic-2", "lic-4"]);
    assert.deepEqual(await guids({ expiringBy: T0 }), ["lic-4"]);
    assert.deepEqual(await guids({}), ["lic-1", "lic-2", "lic-3", "lic-4", "lic-5"]);
  });
});
