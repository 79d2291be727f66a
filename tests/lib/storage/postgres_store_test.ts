import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  DatabaseError,
  DatabaseTooNewError,
  DatabaseUnavailableError,
} from "../../../lib/errors.ts";
import { claim, type LeasePolicy, reap, release } from "../../../lib/leases.ts";
import { openStore } from "../../../lib/storage/open.ts";
import { PG_SCHEMA_VERSION } from "../../../lib/storage/postgres/schema.ts";
import { MIGRATIONS } from "../../../lib/storage/sqlite/schema.ts";
import type { Store } from "../../../lib/storage/store.ts";
import { tempDir } from "../../helpers.ts";
import { type TestDatabase, testDatabase } from "../../postgres.ts";

const T0 = 1_800_000_000;
const FIFO: LeasePolicy = { ttl: 60, heartbeats: true, strategy: "fifo" };

/** Inserts `count` licenses (in pool `poolId`, null: none) directly; returns their ids. */
async function addLicenses(db: TestDatabase, count: number, poolId: number | null = null) {
  const rows = await db.sql<{ id: number }[]>`
    INSERT INTO licenses (guid, file, key, pool_id, created_at)
    SELECT 'lic-' || g || '-' || ${poolId ?? 0}::bigint, convert_to('file-' || g || '-' || ${
    poolId ?? 0
  }::bigint, 'UTF8'), 'KEY-' || g || '-' || ${poolId ?? 0}::bigint, ${poolId}::bigint, ${T0}
    FROM generate_series(1, ${count}::int) g ORDER BY g RETURNING id`;
  return rows.map((row) => row.id);
}

async function leasedCount(db: TestDatabase): Promise<number> {
  const [row] = await db.sql<{ n: number }[]>`
    SELECT count(*) AS n FROM licenses WHERE node_id IS NOT NULL`;
  return row.n;
}

async function withStore(fn: (store: Store, db: TestDatabase) => Promise<void>) {
  await using db = await testDatabase();
  const store = await openStore(db.url, { now: T0 });
  try {
    await fn(store, db);
  } finally {
    await store.close();
  }
}

Deno.test("openStore() on PostgreSQL creates SQLite's tables and columns", async () => {
  await using dir = await tempDir();
  const sqlitePath = `${dir.path}/relay.sqlite`;
  await (await openStore(sqlitePath, { now: T0 })).close();
  const sqlite = new DatabaseSync(sqlitePath, { readOnly: true });
  const expected = new Map<string, string[]>();
  try {
    const tables = sqlite.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    ).all().map((row) => String(row.name));
    for (const table of tables) {
      if (table === "free_counts") continue; // SQLite's own: PostgreSQL keeps no counts
      expected.set(
        table,
        sqlite.prepare("SELECT name FROM pragma_table_info(?) ORDER BY cid").all(table)
          .map((row) => String(row.name)),
      );
    }
  } finally {
    sqlite.close();
  }
  await withStore(async (_store, db) => {
    const columns = await db.sql<{ table: string; column: string }[]>`
      SELECT table_name AS table, column_name AS column FROM information_schema.columns
      WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`;
    const actual = new Map<string, string[]>();
    for (const { table, column } of columns) {
      actual.set(table, [...actual.get(table) ?? [], column]);
    }
    assert.deepEqual(new Map([...actual].sort()), new Map([...expected].sort()));
    const [version] = await db.sql`SELECT max(version) AS v FROM relay_migrations`;
    assert.equal(version.v, MIGRATIONS.length);
    assert.equal(PG_SCHEMA_VERSION, MIGRATIONS.length);
    const events = await db.sql`SELECT id, name FROM event_types ORDER BY id`;
    assert.equal(events.length, 19);
    assert.equal(events[18].name, "user.culled");
    const entities = await db.sql`SELECT id, name FROM entity_types ORDER BY id`;
    assert.deepEqual(entities.map((row) => row.name), [
      "unknown",
      "license",
      "node",
      "pool",
      "user",
    ]);
    const [reference] = await db.sql`SELECT version, dirty FROM schema_migrations`;
    assert.deepEqual({ ...reference }, { version: 1755607637, dirty: false });
  });
});

Deno.test("openStore() on PostgreSQL refuses a newer Relay's database, an empty one read-only, foreign tables", async () => {
  await using db = await testDatabase();
  await assert.rejects(
    openStore(db.url, { now: T0, create: false }),
    (error) =>
      error instanceof DatabaseError &&
      /not a Relay database \(no tables\): run relay serve or relay add first/.test(error.message),
  );
  const [{ n }] = await db.sql`SELECT count(*) AS n FROM information_schema.tables
    WHERE table_schema = 'public'`;
  assert.equal(n, 0);
  await (await openStore(db.url, { now: T0 })).close();
  await db.sql`INSERT INTO relay_migrations (version, name, applied_at) VALUES (99, 'x', 1)`;
  await assert.rejects(
    openStore(db.url, { now: T0 }),
    (error) =>
      error instanceof DatabaseTooNewError && /schema version 99/.test(error.message) &&
      !error.message.includes("password"),
  );

  await using other = await testDatabase();
  await other.sql`CREATE TABLE customers (id INT)`;
  await assert.rejects(openStore(other.url, { now: T0 }), /tables that are not Relay's/);
});

Deno.test("openStore() on PostgreSQL: replicas starting together migrate once", async () => {
  await using db = await testDatabase();
  const stores = await Promise.all(
    Array.from({ length: 4 }, () => openStore(db.url, { now: T0, poolSize: 2 })),
  );
  await Promise.all(stores.map((store) => store.close()));
  const rows = await db.sql`SELECT version FROM relay_migrations`;
  assert.deepEqual(rows.map((row) => row.version), [PG_SCHEMA_VERSION]);
});

Deno.test("claim(), release() and reap() on PostgreSQL", async () => {
  await withStore(async (store, db) => {
    const [first, second] = await addLicenses(db, 2);
    const options = { pool: null, policy: FIFO };
    const created = await claim(store, "node-a", { ...options, now: T0 });
    assert.equal(created.kind, "created");
    assert.equal(created.kind === "created" && created.licenseKey, "KEY-1-0");
    const extended = await claim(store, "node-a", { ...options, now: T0 + 10 });
    assert.deepEqual(extended.kind, "extended");
    assert.equal((await claim(store, "node-b", { ...options, now: T0 + 10 })).kind, "created");
    assert.equal((await claim(store, "node-c", { ...options, now: T0 + 10 })).kind, "exhausted");
    const released = await release(store, "node-a", { ...options, now: T0 + 20 });
    assert.deepEqual(released, { kind: "released", licenseId: "lic-1-0" });
    const [row] = await db.sql`SELECT node_id, claims, last_released_at FROM licenses
      WHERE id = ${first}`;
    assert.deepEqual({ ...row }, { node_id: null, claims: 1, last_released_at: T0 + 20 });

    // node-b's lease runs out at T0 + 70; the periodic reaper ends it.
    assert.equal(await reap(store, { now: T0 + 69, ttl: 60, limit: 10 }), 0);
    assert.equal(await reap(store, { now: T0 + 70, ttl: 60, limit: 10 }), 1);
    const [nodeB] = await db.sql`SELECT id, deactivated_at FROM nodes
      WHERE fingerprint = 'node-b'`;
    assert.equal(nodeB.deactivated_at, T0 + 70);
    assert.equal(await leasedCount(db), 0);
    const audit = await db.sql`SELECT event_type_id AS e, entity_type_id AS t, entity_id AS i,
      created_at AS at FROM audit_logs ORDER BY id`;
    assert.deepEqual(audit.slice(-2).map((r) => [r.e, r.t, r.i, r.at]), [
      [6, 1, second, T0 + 70],
      [10, 2, nodeB.id, T0 + 70],
    ]);
    // A claim that finds the pool exhausted reaps expired leases itself.
    await claim(store, "node-d", { ...options, now: T0 + 100 });
    await claim(store, "node-e", { ...options, now: T0 + 100 });
    const late = await claim(store, "node-f", { ...options, now: T0 + 200 });
    assert.equal(late.kind, "created");
    // Expired free licenses only: expired_only, not exhausted.
    await db.sql`UPDATE licenses SET expires_at = ${T0} WHERE node_id IS NULL`;
    const expired = await claim(store, "node-g", { ...options, now: T0 + 200 });
    assert.equal(expired.kind, "expired_only");
  });
});

Deno.test("claims on two PostgreSQL stores: 200 holders, 50 licenses, 50 leases", async () => {
  await using db = await testDatabase();
  const a = await openStore(db.url, { now: T0, poolSize: 5 });
  const b = await openStore(db.url, { now: T0, poolSize: 5 });
  try {
    await addLicenses(db, 50);
    for (const strategy of ["fifo", "rand"] as const) {
      const policy = { ...FIFO, strategy };
      const results = await Promise.all(
        Array.from(
          { length: 200 },
          (_, i) => claim(i % 2 ? a : b, `${strategy}-${i}`, { pool: null, policy, now: T0 }),
        ),
      );
      const kinds = results.map((result) => result.kind);
      assert.equal(kinds.filter((kind) => kind === "created").length, 50);
      assert.equal(kinds.filter((kind) => kind === "exhausted").length, 150);
      assert.equal(await leasedCount(db), 50);
      await db.sql`UPDATE licenses SET node_id = NULL`;
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

Deno.test("claims of one holder on two PostgreSQL stores: one lease", async () => {
  await using db = await testDatabase();
  const a = await openStore(db.url, { now: T0, poolSize: 5 });
  const b = await openStore(db.url, { now: T0, poolSize: 5 });
  try {
    await addLicenses(db, 5);
    const results = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => claim(i % 2 ? a : b, "same-node", { pool: null, policy: FIFO, now: T0 }),
      ),
    );
    const kinds = results.map((result) => result.kind);
    assert.equal(kinds.filter((kind) => kind === "created").length, 1);
    assert.equal(kinds.filter((kind) => kind === "extended").length, 19);
    assert.equal(await leasedCount(db), 1);
    const [{ n }] = await db.sql`SELECT count(*) AS n FROM nodes`;
    assert.equal(n, 1);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

Deno.test("reap() on PostgreSQL runs in one of two concurrent transactions", async () => {
  await using db = await testDatabase();
  const a = await openStore(db.url, { now: T0, poolSize: 2 });
  const b = await openStore(db.url, { now: T0, poolSize: 2 });
  try {
    await addLicenses(db, 3);
    for (const node of ["n1", "n2", "n3"]) {
      await claim(a, node, { pool: null, policy: FIFO, now: T0 });
    }
    let open!: () => void;
    const opened = new Promise<void>((resolve) => open = resolve);
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => finish = resolve);
    const holder = a.transaction(async (tx) => {
      const locked = await tx.tryReaperLock();
      open();
      await finished;
      return locked;
    });
    await opened;
    // The other store's reaper skips its turn while the lock is held.
    assert.equal(await reap(b, { now: T0 + 100, ttl: 60, limit: 10 }), 0);
    assert.equal(await leasedCount(db), 3);
    finish();
    assert.equal(await holder, true);
    // Then either store takes over.
    assert.equal(await reap(b, { now: T0 + 100, ttl: 60, limit: 2 }), 2);
    assert.equal(await reap(a, { now: T0 + 100, ttl: 60, limit: 2 }), 1);
    assert.equal(await leasedCount(db), 0);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

Deno.test("rand on PostgreSQL picks every license, through indexes", async () => {
  await withStore(async (store, db) => {
    const ids = await addLicenses(db, 20);
    const seen = new Set<string>();
    const policy: LeasePolicy = { ...FIFO, strategy: "rand" };
    for (let i = 0; i < 200; i++) {
      const result = await claim(store, "node", { pool: null, policy, now: T0 + i });
      if (result.kind === "created") seen.add(result.licenseKey);
      await release(store, "node", { pool: null, policy, now: T0 + i });
    }
    assert.equal(seen.size, ids.length);

    const [{ id: poolId }] = await db.sql<
      { id: number }[]
    >`INSERT INTO pools (name) VALUES ('big') RETURNING id`;
    await addLicenses(db, 20_000, poolId);
    // Leased but one in 100: rand's samples mostly miss, the pivot finds one.
    await db.sql`INSERT INTO nodes (fingerprint, last_heartbeat_at, lease_expires_at)
      SELECT 'bulk-' || id, ${T0}, ${T0 + 1_000_000} FROM licenses
      WHERE pool_id = ${poolId} AND id % 100 <> 0`;
    await db.sql`UPDATE licenses l SET node_id = n.id FROM nodes n
      WHERE n.fingerprint = 'bulk-' || l.id`;
    await db.sql`ANALYZE`;
    // The picks' plans (index lookups, never a scan or sort of licenses):
    // postgres_plans_test.ts, on the statements themselves.

    const [{ n: free }] = await db.sql`SELECT count(*) AS n FROM licenses
      WHERE pool_id = ${poolId} AND node_id IS NULL`;
    assert.equal(free, 200);
    const found = new Set<string>();
    for (let i = 0; i < free; i++) {
      const sparse = await claim(store, `sparse-${i}`, { pool: "big", policy, now: T0 });
      assert.equal(sparse.kind, "created");
      found.add(sparse.kind === "created" ? sparse.licenseKey : "");
    }
    assert.equal(found.size, free);
    assert.equal(
      (await claim(store, "one-more", { pool: "big", policy, now: T0 })).kind,
      "exhausted",
    );
  });
});

Deno.test("a claim on PostgreSQL takes the one free license that no transaction has locked", async () => {
  await withStore(async (store, db) => {
    const ids = await addLicenses(db, 10);
    const unlocked = ids[7];
    let locked!: () => void;
    const lockedNow = new Promise<void>((resolve) => locked = resolve);
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => finish = resolve);
    const blocker = db.sql.begin(async (sql) => {
      await sql`SELECT id FROM licenses WHERE id <> ${unlocked} FOR UPDATE`;
      locked();
      await finished;
    });
    await lockedNow;
    try {
      for (const strategy of ["fifo", "lifo", "rand"] as const) {
        const result = await claim(store, `node-${strategy}`, {
          pool: null,
          policy: { ...FIFO, strategy },
          now: T0,
        });
        assert.equal(result.kind, "created");
        assert.equal(result.kind === "created" && result.licenseKey, "KEY-8-0");
        await release(store, `node-${strategy}`, { pool: null, policy: FIFO, now: T0 });
      }
    } finally {
      finish();
      await blocker;
    }
  });
});

/** A PostgreSQL server of the test's own, which it may stop and start (as user postgres). */
async function ownServer() {
  const bin = "/usr/lib/postgresql/15/bin";
  const dir = await Deno.makeTempDir({ prefix: "relay-pg-" });
  await run("chown", "postgres", dir);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const data = `${dir}/data`;
  await run(
    "runuser",
    "-u",
    "postgres",
    "--",
    `${bin}/initdb`,
    "-A",
    "trust",
    "-U",
    "postgres",
    "-D",
    data,
  );
  const ctl = (...args: string[]) =>
    run(
      "runuser",
      "-u",
      "postgres",
      "--",
      `${bin}/pg_ctl`,
      "-D",
      data,
      "-l",
      `${dir}/log`,
      ...args,
    );
  const start = () =>
    ctl("-w", "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, "start");
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop: () => ctl("-w", "-m", "immediate", "stop"),
    async [Symbol.asyncDispose]() {
      await ctl("-m", "immediate", "stop").catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function run(command: string, ...args: string[]): Promise<void> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(`${command} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
}

Deno.test("a PostgreSQL server that goes away: DatabaseUnavailableError, then the store reconnects", async () => {
  await using server = await ownServer();
  const store = await openStore(server.url, { now: T0, poolSize: 2 });
  try {
    await store.transaction((tx) => tx.insertPool("p", T0));
    await store.transaction((tx) => tx.recordProbe(T0));
    await server.stop();
    await assert.rejects(
      store.transaction((tx) => tx.recordProbe(T0 + 1)),
      (error) => error instanceof DatabaseUnavailableError && !error.message.includes("127.0.0.1"),
    );
    assert.notEqual(store.writeFailure(), null);
    await assert.rejects(store.read((tx) => tx.poolByName("p")), DatabaseUnavailableError);
    await server.start();
    await store.transaction((tx) => tx.recordProbe(T0 + 2));
    assert.equal(store.writeFailure(), null);
    assert.equal((await store.read((tx) => tx.poolByName("p")))?.name, "p");
  } finally {
    await store.close();
  }
});
