import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { EntityType, EventType } from "../../lib/audit.ts";
import { claim, type ClaimResult, type LeasePolicy, reap, release } from "../../lib/leases.ts";
import { openStore, type StoreOptions } from "../../lib/storage/open.ts";
import type { Store } from "../../lib/storage/store.ts";
import { auditTrail, FREE_COUNT_MISMATCHES, prng, query, tempDir } from "../helpers.ts";

const T0 = 1_800_000_000;
const HEARTBEATS: LeasePolicy = { ttl: 60, heartbeats: true, strategy: "fifo" };

/**
 * For tests of thousands of claims that check choices and counters, not
 * durability: commits skip the fsync.
 */
const NO_FSYNC: Partial<StoreOptions> = { pragmas: { synchronous: "OFF" } };

/** A store with `count` licenses per pool (null: no pool), inserted directly. */
async function withLicenses(
  pools: Record<string, number>,
  fn: (store: Store, path: string) => Promise<void>,
  options: Partial<StoreOptions> = {},
) {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = await openStore(path, { now: T0, ...options });
  try {
    let n = 0;
    await store.transaction(async (tx) => {
      for (const [name, count] of Object.entries(pools)) {
        const poolId = name === "" ? null : (await tx.insertPool(name, T0)).id;
        for (let i = 0; i < count; i++) {
          n++;
          await tx.insertLicense({
            guid: `lic-${n}`,
            file: new TextEncoder().encode(`file-${n}`),
            key: `KEY-${n}`,
            poolId,
            fileIssuedAt: null,
            fileExpiresAt: null,
            expiresAt: null,
          }, T0);
        }
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

Deno.test("claim() leases a free license, extends it on heartbeat and releases it", async () => {
  await withLicenses({ "": 1 }, async (store, path) => {
    const options = { pool: null, policy: HEARTBEATS };
    const created = await claim(store, "node-a", { ...options, now: T0 });
    assert.equal(created.kind, "created");
    assert.deepEqual(
      created.kind === "created" && new TextDecoder().decode(created.licenseFile),
      "file-1",
    );
    assert.equal(keyOf(created), "KEY-1");
    assert.equal(created.kind === "created" && created.expiresAt, T0 + 60);
    assert.equal(created.kind === "created" && created.license.guid, "lic-1");

    assert.deepEqual(await claim(store, "node-a", { ...options, now: T0 + 30 }), {
      kind: "extended",
      expiresAt: T0 + 90,
      license: { guid: "lic-1", fileExpiresAt: null },
    });
    // Retry when node-a's lease runs out.
    assert.deepEqual(await claim(store, "node-b", { ...options, now: T0 + 31 }), {
      kind: "exhausted",
      retryAt: T0 + 90,
    });
    assert.deepEqual(await release(store, "node-a", { ...options, now: T0 + 40 }), {
      kind: "released",
      licenseId: "lic-1",
    });
    assert.deepEqual(await release(store, "node-a", { ...options, now: T0 + 41 }), {
      kind: "not_found",
    });

    assert.deepEqual(auditTrail(path), [
      ["node.activated", "node", 1, null],
      ["license.leased", "license", 1, null],
      ["node.heartbeat_ping", "node", 1, null],
      ["license.lease_extended", "license", 1, null],
      ["node.heartbeat_ping", "node", 1, null],
      ["license.released", "license", 1, null],
      ["node.deactivated", "node", 1, null],
    ]);
    assert.deepEqual(
      query(path, "SELECT claims, node_id, last_claimed_at, last_released_at FROM licenses"),
      [{ claims: 1, node_id: null, last_claimed_at: T0, last_released_at: T0 + 40 }],
    );
    assert.deepEqual(
      query(path, "SELECT fingerprint, last_heartbeat_at, deactivated_at FROM nodes"),
      [{ fingerprint: "node-a", last_heartbeat_at: T0 + 30, deactivated_at: T0 + 40 }],
      "node-b, which got nothing, was not activated",
    );
  });
});

Deno.test("claim() answers conflict without heartbeats, and across pools", async () => {
  await withLicenses({ prod: 1, dev: 1 }, async (store) => {
    const noHeartbeats = { ...HEARTBEATS, heartbeats: false };
    assert.equal(
      (await claim(store, "a", { pool: "prod", now: T0, policy: noHeartbeats })).kind,
      "created",
    );
    assert.deepEqual(await claim(store, "a", { pool: "prod", now: T0 + 1, policy: noHeartbeats }), {
      kind: "conflict",
    });
    // Without heartbeats a lease never expires.
    assert.deepEqual(
      await claim(store, "b", { pool: "prod", now: T0 + 10_000, policy: noHeartbeats }),
      {
        kind: "exhausted",
        retryAt: undefined,
      },
    );
    assert.deepEqual(await claim(store, "a", { pool: "dev", now: T0 + 2, policy: HEARTBEATS }), {
      kind: "conflict",
    });
    assert.deepEqual(await release(store, "a", { pool: "dev", now: T0 + 3, policy: HEARTBEATS }), {
      kind: "not_found",
    });
  });
});

Deno.test("claim() and release() refuse an unknown pool", async () => {
  await withLicenses({ prod: 1 }, async (store) => {
    const options = { pool: "nope", now: T0, policy: HEARTBEATS };
    await assert.rejects(
      () => claim(store, "a", options),
      (e: Error & { code?: string }) => e.code === "pool_not_found",
    );
    await claim(store, "a", { ...options, pool: "prod" });
    await assert.rejects(
      () => release(store, "a", options),
      (e: Error & { code?: string }) => e.code === "pool_not_found",
    );
    assert.deepEqual(
      await release(store, "unknown", options),
      { kind: "not_found" },
      "node first, then pool",
    );
  });
});

Deno.test("claim() takes an expired lease instead of answering exhausted, before any reaper runs", async () => {
  await withLicenses({ "": 1 }, async (store, path) => {
    const options = { pool: null, policy: HEARTBEATS };
    assert.equal((await claim(store, "a", { ...options, now: T0 })).kind, "created");
    assert.equal(
      (await claim(store, "b", { ...options, now: T0 + 59 })).kind,
      "exhausted",
      "not yet expired",
    );
    assert.equal(keyOf(await claim(store, "b", { ...options, now: T0 + 60 })), "KEY-1");
    assert.deepEqual(auditTrail(path).slice(3), [
      ["license.lease_expired", "license", 1, null],
      ["node.culled", "node", 1, null],
      ["node.activated", "node", 2, null],
      ["license.leased", "license", 1, null],
      ["node.heartbeat_ping", "node", 2, null],
    ]);
    // The first node's lease is gone: it is not extended, and there is nothing left for it.
    assert.deepEqual(await claim(store, "a", { ...options, now: T0 + 61 }), {
      kind: "exhausted",
      retryAt: T0 + 120,
    });
  });
});

Deno.test("claim() gives a node whose own lease expired a new lease, not an extension", async () => {
  await withLicenses({ "": 2 }, async (store, path) => {
    const options = { pool: null, policy: HEARTBEATS };
    await claim(store, "a", { ...options, now: T0 });
    const again = await claim(store, "a", { ...options, now: T0 + 60 });
    assert.equal(again.kind, "created");
    assert.deepEqual(auditTrail(path).slice(3).map(([event]) => event), [
      "license.lease_expired",
      "node.culled",
      "node.activated",
      "license.leased",
      "node.heartbeat_ping",
    ]);
    assert.equal(query(path, "SELECT claims FROM licenses WHERE id = 1")[0].claims, 2);
  });
});

Deno.test("release() of an expired lease records the expiry and answers not_found", async () => {
  await withLicenses({ "": 1 }, async (store, path) => {
    const options = { pool: null, policy: HEARTBEATS };
    await claim(store, "a", { ...options, now: T0 });
    assert.deepEqual(await release(store, "a", { ...options, now: T0 + 60 }), {
      kind: "not_found",
    });
    assert.deepEqual(auditTrail(path).slice(3).map(([event]) => event), [
      "license.lease_expired",
      "node.culled",
    ]);
    assert.equal(query(path, "SELECT node_id FROM licenses")[0].node_id, null);
  });
});

Deno.test("claim() strategies: fifo takes the first added, lifo the last, rand any uniformly", async (t) => {
  await t.step("fifo and lifo", async () => {
    await withLicenses({ prod: 3 }, async (store) => {
      const fifo = { pool: "prod", now: T0, policy: HEARTBEATS };
      const lifo = { ...fifo, policy: { ...HEARTBEATS, strategy: "lifo" as const } };
      assert.equal(keyOf(await claim(store, "a", fifo)), "KEY-1");
      assert.equal(keyOf(await claim(store, "b", lifo)), "KEY-3");
      assert.equal(keyOf(await claim(store, "c", lifo)), "KEY-2");
      await release(store, "a", fifo);
      assert.equal(keyOf(await claim(store, "d", lifo)), "KEY-1");
    });
  });
  const RAND = { pool: null, policy: { ...HEARTBEATS, strategy: "rand" as const } };
  /**
   * Claims and releases `draws` times with rand; returns how often each key
   * was drawn and the chi-square statistic against a uniform draw.
   */
  async function drawRand(store: Store, draws: number, random?: () => number) {
    const observed = new Map<string, number>();
    for (let i = 0; i < draws; i++) {
      const key = keyOf(await claim(store, `m${i}`, { ...RAND, now: T0, random }))!;
      observed.set(key, (observed.get(key) ?? 0) + 1);
      await release(store, `m${i}`, { ...RAND, now: T0 });
    }
    const expected = draws / observed.size;
    const chiSquare = [...observed.values()].reduce(
      (sum, o) => sum + (o - expected) ** 2 / expected,
      0,
    );
    return { observed, chiSquare };
  }
  await t.step("rand picks each free license with equal probability", async () => {
    await withLicenses({ "": 4, other: 2 }, async (store) => {
      // Lease license 1 so three stay free in the default pool.
      await claim(store, "holder", { ...RAND, policy: HEARTBEATS, now: T0 });
      // A chi-square test over the three free licenses.
      const { observed, chiSquare } = await drawRand(store, 3000);
      assert.deepEqual([...observed.keys()].sort(), ["KEY-2", "KEY-3", "KEY-4"]);
      assert.ok(chiSquare < 20, `chi-square ${chiSquare} (2 degrees of freedom; p < 0.00005)`);
    }, NO_FSYNC);
  });
  // rand samples ids while at least 1 in 8 is free, and walks free_counts
  // when fewer are: both must be uniform.
  for (
    const [label, leased] of [["dense pool (sampling)", 10], ["sparse pool (walk)", 36]] as const
  ) {
    await t.step(`rand is uniform in a ${label}`, async () => {
      await withLicenses({ "": 40 }, async (store) => {
        for (let i = 0; i < leased; i++) {
          await claim(store, `holder${i}`, { ...RAND, policy: HEARTBEATS, now: T0 });
        }
        const free = 40 - leased;
        const { observed, chiSquare } = await drawRand(store, 300 * free, prng(leased));
        assert.equal(observed.size, free, [...observed.keys()].join());
        // 99.99th percentile of chi-square: 66.2 for 29 degrees of freedom, 21.1 for 3.
        assert.ok(chiSquare < (free === 30 ? 66.2 : 21.1), `chi-square ${chiSquare}`);
      }, NO_FSYNC);
    });
  }
});

Deno.test("reap() releases expired leases in batches, oldest first, with their audit rows", async () => {
  await withLicenses({ "": 3, prod: 1 }, async (store, path) => {
    const options = { pool: null, policy: HEARTBEATS };
    await claim(store, "a", { ...options, now: T0 });
    await claim(store, "b", { ...options, now: T0 + 10 });
    await claim(store, "c", { ...options, now: T0 + 100 });
    await claim(store, "p", { ...options, pool: "prod", now: T0 + 5 });
    const before = auditTrail(path).length;

    assert.equal(await reap(store, { now: T0 + 75, ttl: 60, limit: 2 }), 2);
    assert.equal(await reap(store, { now: T0 + 75, ttl: 60, limit: 2 }), 1);
    assert.equal(await reap(store, { now: T0 + 75, ttl: 60, limit: 2 }), 0);
    assert.deepEqual(
      query(path, "SELECT n.fingerprint, l.guid FROM licenses l JOIN nodes n ON n.id = l.node_id"),
      [{ fingerprint: "c", guid: "lic-3" }],
    );
    assert.deepEqual(auditTrail(path).slice(before), [
      ["license.lease_expired", "license", 1, null],
      ["node.culled", "node", 1, null],
      ["license.lease_expired", "license", 4, 1],
      ["node.culled", "node", 4, 1],
      ["license.lease_expired", "license", 2, null],
      ["node.culled", "node", 2, null],
    ]);
    assert.equal(
      query(path, "SELECT count(*) AS n FROM nodes WHERE deactivated_at = ?", T0 + 75)[0].n,
      3,
    );
  });
});

Deno.test("free_counts stays in step with licenses through every kind of write", async () => {
  await withLicenses({ "": 20, prod: 20 }, async (store, path) => {
    let seed = 7;
    const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    const policy = { ...HEARTBEATS, strategy: "rand" as const };
    for (let i = 0; i < 2000; i++) {
      const fingerprint = `n${Math.floor(random() * 30)}`;
      const pool = random() < 0.5 ? null : "prod";
      const now = T0 + i;
      const roll = random();
      if (roll < 0.5) await claim(store, fingerprint, { pool, now, policy, random });
      else if (roll < 0.9) await release(store, fingerprint, { pool, now, policy });
      else await reap(store, { now, ttl: 60, limit: 5 });
    }
    assert.deepEqual(query(path, FREE_COUNT_MISMATCHES), []);
    // Writes that Relay never makes, as another program (or Keygen Relay) might.
    const db = new DatabaseSync(path);
    db.exec("DELETE FROM licenses WHERE id % 7 = 0");
    db.exec("UPDATE licenses SET pool_id = NULL WHERE id % 5 = 0");
    db.exec("DELETE FROM nodes WHERE id % 3 = 0"); // ON DELETE SET NULL frees their licenses
    db.exec(`INSERT INTO licenses (id, guid, file, key, pool_id)
      VALUES (300000, 'far', x'00', 'FAR', NULL), (5000000, 'farther', x'01', 'FARTHER', 1)`);
    db.close();
    assert.ok(query(path, "SELECT count(*) AS n FROM free_counts")[0].n as number > 6);
    assert.deepEqual(query(path, FREE_COUNT_MISMATCHES), []);
  }, NO_FSYNC);
});

Deno.test("Tx.freeLicenseAt() finds the k-th free license of a pool across every level", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = await openStore(path, { now: T0 });
  try {
    const prod = (await store.transaction((tx) => tx.insertPool("prod", T0))).id;
    // Ids spread over many buckets of each level (64, 4,096 and 262,144 ids).
    const db = new DatabaseSync(path);
    const insert = db.prepare(
      "INSERT INTO licenses (id, guid, file, key, pool_id) VALUES (?, ?, ?, ?, ?)",
    );
    const random = prng(11);
    const ids = new Set<number>();
    while (ids.size < 300) ids.add(1 + Math.floor(random() ** 3 * 3_000_000));
    for (const id of ids) {
      insert.run(id, `g${id}`, new Uint8Array([id % 256, id >> 8]), `K${id}`, id % 3 ? null : prod);
    }
    db.exec("INSERT INTO nodes (fingerprint) VALUES ('holder')");
    db.exec(
      "UPDATE licenses SET node_id = 1 WHERE id = (SELECT min(id) FROM licenses WHERE id % 5 = 1)",
    );
    db.close();
    for (const poolId of [null, prod]) {
      const free = query<{ id: number }>(
        path,
        "SELECT id FROM licenses WHERE pool_id IS ? AND node_id IS NULL ORDER BY id",
        poolId,
      ).map((row) => row.id);
      assert.ok(free.length > 50);
      await store.read(async (tx) => {
        assert.equal(await tx.freeLicenseCount(poolId), free.length);
        const found = [];
        for (let k = 0; k < free.length; k++) found.push(await tx.freeLicenseAt(poolId, k));
        assert.deepEqual(found, free);
        assert.equal(await tx.freeLicenseAt(poolId, free.length), undefined);
      });
    }
  } finally {
    await store.close();
  }
});

Deno.test("audit rows are part of the lease transaction: none when audit is off", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = await openStore(path, { now: T0, audit: false });
  try {
    await store.transaction((tx) =>
      tx.insertLicense({
        guid: "g",
        file: new Uint8Array([1]),
        key: "K",
        poolId: null,
        fileIssuedAt: null,
        fileExpiresAt: null,
        expiresAt: null,
      }, T0)
    );
    assert.equal(
      (await claim(store, "a", { pool: null, now: T0, policy: HEARTBEATS })).kind,
      "created",
    );
    await store.transaction((tx) =>
      tx.audit({
        event: EventType.nodeActivated,
        entity: EntityType.node,
        entityId: 1,
        poolId: null,
        now: T0,
      })
    );
  } finally {
    await store.close();
  }
  assert.equal(query(path, "SELECT count(*) AS n FROM audit_logs")[0].n, 0);
});

Deno.test("each lease keeps the expiry it was granted with, whatever the reader's ttl", async () => {
  await withLicenses({ "": 1 }, async (store, path) => {
    const long = { pool: null, policy: { ...HEARTBEATS, ttl: 600 } };
    const short = { pool: null, policy: { ...HEARTBEATS, ttl: 30 } };
    assert.equal((await claim(store, "a", { ...long, now: T0 })).kind, "created");
    assert.deepEqual(
      query(path, "SELECT last_heartbeat_at, lease_expires_at FROM nodes WHERE fingerprint = 'a'"),
      [{ last_heartbeat_at: T0, lease_expires_at: T0 + 600 }],
    );
    // A server with a 30 s ttl neither reaps it nor hands its license out.
    assert.equal(await reap(store, { now: T0 + 60, ttl: 30, limit: 10 }), 0);
    assert.deepEqual(await claim(store, "b", { ...short, now: T0 + 60 }), {
      kind: "exhausted",
      retryAt: T0 + 600,
    });
    // Its holder's heartbeat through that server extends it, by that server's ttl.
    assert.deepEqual(await claim(store, "a", { ...short, now: T0 + 61 }), {
      kind: "extended",
      expiresAt: T0 + 91,
      license: { guid: "lic-1", fileExpiresAt: null },
    });
    assert.equal(await reap(store, { now: T0 + 90, ttl: 600, limit: 10 }), 0);
    assert.equal(await reap(store, { now: T0 + 91, ttl: 600, limit: 10 }), 1);
    assert.deepEqual(auditTrail(path).slice(-2), [
      ["license.lease_expired", "license", 1, null],
      ["node.culled", "node", 1, null],
    ]);
  });
});

Deno.test("a lease stored without an expiry (Keygen Relay, Relay 0.1) expires by the reader's ttl", async () => {
  await withLicenses({ "": 2 }, async (store, path) => {
    const options = { pool: null, policy: HEARTBEATS };
    await claim(store, "old", { ...options, now: T0 });
    await claim(store, "new", { ...options, now: T0 + 50 });
    const db = new DatabaseSync(path);
    db.exec("UPDATE nodes SET lease_expires_at = NULL WHERE fingerprint = 'old'");
    db.close();
    // Without heartbeats such a lease never expires ("new" is still live).
    const noHeartbeats = { ...options, policy: { ...HEARTBEATS, heartbeats: false } };
    // Retry when "new" runs out: its stored expiry holds for every reader.
    assert.deepEqual(await claim(store, "x", { ...noHeartbeats, now: T0 + 100 }), {
      kind: "exhausted",
      retryAt: T0 + 110,
    });
    assert.equal(await reap(store, { now: T0 + 59, ttl: 60, limit: 10 }), 0);
    // Both kinds in one batch: the stored-expiry-less one by last heartbeat + ttl.
    assert.equal(await reap(store, { now: T0 + 110, ttl: 60, limit: 10 }), 2);
    assert.deepEqual(
      query(path, "SELECT fingerprint FROM nodes WHERE deactivated_at = ? ORDER BY id", T0 + 110),
      [{ fingerprint: "old" }, { fingerprint: "new" }],
    );
  });
});

Deno.test("without heartbeats a lease is stored without an expiry and never reaped", async () => {
  await withLicenses({ "": 1 }, async (store, path) => {
    const options = { pool: null, policy: { ...HEARTBEATS, heartbeats: false } };
    assert.equal((await claim(store, "a", { ...options, now: T0 })).kind, "created");
    assert.deepEqual(query(path, "SELECT lease_expires_at FROM nodes"), [{
      lease_expires_at: null,
    }]);
    assert.deepEqual(await claim(store, "b", { ...options, now: T0 + 86_400 }), {
      kind: "exhausted",
      retryAt: undefined,
    });
  });
});
