import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { EntityType, EventType } from "../../../lib/audit.ts";
import { DatabaseError, DatabaseTooNewError } from "../../../lib/errors.ts";
import { openStore } from "../../../lib/storage/open.ts";
import { MIGRATIONS, REFERENCE_SCHEMA_VERSION } from "../../../lib/storage/sqlite/schema.ts";
import { openSqliteStore } from "../../../lib/storage/sqlite/sqlite_store.ts";
import { FREE_COUNT_MISMATCHES, query, tempDir } from "../../helpers.ts";

const NOW = 1_766_232_000; // 2025-12-20T12:00:00Z

/** The reference Relay's final schema as its migrations leave it (tables rebuilt and renamed). */
const REFERENCE_DDL = `
  CREATE TABLE schema_migrations (version uint64, dirty bool);
  CREATE UNIQUE INDEX version_unique ON schema_migrations (version);
  CREATE TABLE event_types (id TINYINT PRIMARY KEY, name TEXT NOT NULL);
  INSERT INTO event_types VALUES (0,'unknown'),(1,'license.added'),(2,'license.removed'),
    (3,'license.leased'),(4,'license.lease_extended'),(5,'license.released'),
    (6,'license.lease_expired'),(7,'node.activated'),(8,'node.heartbeat_ping'),
    (9,'node.deactivated'),(10,'node.culled'),(11,'pool.added');
  CREATE TABLE entity_types (id TINYINT PRIMARY KEY, name TEXT NOT NULL);
  INSERT INTO entity_types VALUES (0,'unknown'),(1,'license'),(2,'node'),(3,'pool');
  CREATE TABLE "nodes" (id INTEGER PRIMARY KEY AUTOINCREMENT, fingerprint TEXT UNIQUE NOT NULL,
    last_heartbeat_at INTEGER, created_at INTEGER NOT NULL DEFAULT (unixepoch()), deactivated_at INTEGER);
  CREATE INDEX idx_nodes_activated ON nodes (deactivated_at) WHERE deactivated_at IS NULL;
  CREATE INDEX idx_nodes_last_heartbeat ON nodes (last_heartbeat_at);
  CREATE TABLE pools (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (unixepoch()));
  CREATE TABLE "licenses" (id INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL,
    file BLOB UNIQUE NOT NULL, key TEXT UNIQUE NOT NULL, claims INTEGER DEFAULT 0 NOT NULL,
    last_claimed_at INTEGER, last_released_at INTEGER, node_id INTEGER UNIQUE, pool_id INTEGER,
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    FOREIGN KEY (node_id) REFERENCES nodes(id) ON DELETE SET NULL,
    FOREIGN KEY (pool_id) REFERENCES pools(id) ON DELETE SET NULL);
  CREATE INDEX idx_licenses_pool_node ON "licenses"(pool_id, node_id);
  CREATE TABLE "audit_logs" (id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_type_id TINYINT NOT NULL REFERENCES event_types (id),
    entity_type_id TINYINT NOT NULL REFERENCES entity_types (id),
    entity_id INTEGER NOT NULL, created_at INTEGER NOT NULL DEFAULT (unixepoch()), pool_id INTEGER);
`;

/** A database as the reference Relay leaves it, with a leased license in a pool. */
function writeReferenceDatabase(path: string, version = REFERENCE_SCHEMA_VERSION, dirty = 0) {
  const db = new DatabaseSync(path);
  db.exec(REFERENCE_DDL);
  db.prepare("INSERT INTO schema_migrations VALUES (?, ?)").run(version, dirty);
  db.exec(`
    INSERT INTO pools (name, created_at) VALUES ('prod', 100);
    INSERT INTO nodes (fingerprint, last_heartbeat_at, created_at) VALUES ('node-a', 200, 150);
    INSERT INTO licenses (guid, file, key, claims, last_claimed_at, node_id, pool_id, created_at)
      VALUES ('lic-1', X'0102', 'KEY-1', 3, 190, 1, 1, 120);
    INSERT INTO audit_logs (event_type_id, entity_type_id, entity_id, pool_id, created_at)
      VALUES (3, 1, 1, 1, 190);
  `);
  db.close();
}

Deno.test("openStore() creates the reference schema, records every migration and is idempotent", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  await (await openStore(path, { now: NOW })).close();
  await (await openStore(path, { now: NOW + 10 })).close();

  assert.deepEqual(
    query(path, "SELECT version, applied_at FROM relay_migrations ORDER BY version"),
    MIGRATIONS.map((m) => ({ version: m.version, applied_at: NOW })),
  );
  assert.deepEqual(query(path, "SELECT version, dirty FROM schema_migrations"), [
    { version: REFERENCE_SCHEMA_VERSION, dirty: 0 },
  ]);
  const names = query<{ name: string }>(path, "SELECT name FROM event_types ORDER BY id")
    .map((row) => row.name);
  assert.deepEqual(names, [
    "unknown",
    "license.added",
    "license.removed",
    "license.leased",
    "license.lease_extended",
    "license.released",
    "license.lease_expired",
    "node.activated",
    "node.heartbeat_ping",
    "node.deactivated",
    "node.culled",
    "pool.added",
    "license.denied",
    "license.operator_released",
    "license.renewed",
    "user.activated",
    "user.heartbeat_ping",
    "user.deactivated",
    "user.culled",
  ]);
  assert.deepEqual(
    query<{ name: string }>(path, "SELECT name FROM entity_types ORDER BY id").map((r) => r.name),
    ["unknown", "license", "node", "pool", "user"],
  );
  assert.equal(query(path, "PRAGMA journal_mode")[0].journal_mode, "wal");
});

Deno.test("openStore() creates the database file and its WAL readable by the owner only", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = await openStore(path, { now: NOW });
  try {
    await store.transaction((tx) => tx.insertPool("prod", NOW));
    for (const file of [path, `${path}-wal`, `${path}-shm`]) {
      assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600, file);
    }
  } finally {
    await store.close();
  }
});

Deno.test("openStore() carries a reference Relay database forward without losing a row", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  writeReferenceDatabase(path);
  const store = await openStore(path, { now: NOW });
  try {
    const license = await store.read((tx) => tx.licenseByGuid("lic-1"));
    assert.deepEqual(
      { ...license },
      {
        id: 1,
        guid: "lic-1",
        poolId: 1,
        poolName: "prod",
        claims: 3,
        nodeId: 1,
        nodeFingerprint: "node-a",
        nodeLastHeartbeatAt: 200,
        leaseExpiresAt: null,
        lastClaimedAt: 190,
        lastReleasedAt: null,
        createdAt: 120,
        fileIssuedAt: null,
        fileExpiresAt: null,
        expiresAt: null,
        seats: 1,
        seatsUsed: 1,
      },
    );
  } finally {
    await store.close();
  }
  // Migration 11: the reference's licenses are single-seat, with no recorded limits.
  assert.deepEqual(query(path, "SELECT seat_of, max_machines, max_users FROM licenses"), [
    { seat_of: null, max_machines: null, max_users: null },
  ]);
  assert.deepEqual(
    query(path, "SELECT version FROM relay_migrations ORDER BY version").map((r) => r.version),
    MIGRATIONS.map((m) => m.version),
  );
  assert.deepEqual(query(path, "SELECT version, dirty FROM schema_migrations"), [
    { version: REFERENCE_SCHEMA_VERSION, dirty: 0 },
  ]);
  assert.equal(query(path, "SELECT count(*) AS n FROM audit_logs")[0].n, 1);
  assert.deepEqual(query(path, FREE_COUNT_MISMATCHES), []);
  // Migration 10: the reference's nodes are nodes (holder type 2), not users.
  assert.deepEqual(query(path, "SELECT fingerprint, holder_type FROM nodes"), [
    { fingerprint: "node-a", holder_type: 2 },
  ]);
});

Deno.test("openStore() replaces free_slots with free_counts in a database of Relay 0.1 (4 steps)", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const db = new DatabaseSync(path);
  db.exec("PRAGMA foreign_keys = ON");
  for (const migration of MIGRATIONS.slice(0, 4)) db.exec(migration.sql);
  db.exec(`CREATE TABLE relay_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
    applied_at INTEGER NOT NULL)`);
  for (const { version, name } of MIGRATIONS.slice(0, 4)) {
    db.prepare("INSERT INTO relay_migrations VALUES (?, ?, 0)").run(version, name);
  }
  db.exec(`
    INSERT INTO pools (name) VALUES ('prod');
    INSERT INTO nodes (fingerprint, last_heartbeat_at) VALUES ('a', 1), ('b', 1);
    INSERT INTO licenses (guid, file, key, pool_id) VALUES
      ('l1', x'01', 'K1', NULL), ('l2', x'02', 'K2', 1), ('l3', x'03', 'K3', 1), ('l4', x'04', 'K4', 1);
    UPDATE licenses SET node_id = 1 WHERE id = 2;
    UPDATE licenses SET node_id = 2 WHERE id = 4;
  `);
  assert.equal(db.prepare("SELECT count(*) AS n FROM free_slots").get()!.n, 2);
  db.close();

  await (await openStore(path, { now: NOW })).close();
  const objects = query<{ type: string; name: string }>(
    path,
    "SELECT type, name FROM sqlite_master WHERE name LIKE '%free%' ORDER BY type, name",
  );
  assert.deepEqual(objects.map((o) => `${o.type} ${o.name}`), [
    "table free_counts",
    "trigger free_counts_deleted",
    "trigger free_counts_inserted",
    "trigger free_counts_leased",
    "trigger free_counts_moved",
    "trigger free_counts_released",
  ]);
  assert.deepEqual(
    query(path, "SELECT pool_key, level, bucket, free FROM free_counts ORDER BY 1, 2"),
    [
      { pool_key: 0, level: 1, bucket: 0, free: 1 },
      { pool_key: 0, level: 2, bucket: 0, free: 1 },
      { pool_key: 0, level: 3, bucket: 0, free: 1 },
      { pool_key: 1, level: 1, bucket: 0, free: 1 },
      { pool_key: 1, level: 2, bucket: 0, free: 1 },
      { pool_key: 1, level: 3, bucket: 0, free: 1 },
    ],
  );
  assert.deepEqual(query(path, FREE_COUNT_MISMATCHES), []);
});

Deno.test("openStore() refuses databases it cannot carry forward", async (t) => {
  await using dir = await tempDir();
  const cases: [string, (path: string) => void | Promise<void>, typeof DatabaseError][] = [
    [
      "a dirty reference database",
      (p) => writeReferenceDatabase(p, REFERENCE_SCHEMA_VERSION, 1),
      DatabaseError,
    ],
    ["an older reference database", (p) => writeReferenceDatabase(p, 1755551965), DatabaseError],
    [
      "a newer reference database",
      (p) => writeReferenceDatabase(p, 1800000000),
      DatabaseTooNewError,
    ],
    ["a database of a newer Relay", async (p) => {
      await openSqliteStore(p, { now: NOW }).close();
      const db = new DatabaseSync(p);
      db.prepare("INSERT INTO relay_migrations VALUES (?, 'future', 0)").run(MIGRATIONS.length + 1);
      db.close();
    }, DatabaseTooNewError],
    ["a database of another program", (p) => {
      const db = new DatabaseSync(p);
      db.exec("CREATE TABLE customers (id INTEGER)");
      db.close();
    }, DatabaseError],
    [
      "a file that is not a database",
      (p) => Deno.writeFileSync(p, new TextEncoder().encode("x".repeat(4096))),
      DatabaseError,
    ],
  ];
  for (const [name, write, errorClass] of cases) {
    await t.step(name, async () => {
      const path = `${dir.path}/${name.replaceAll(" ", "_")}.sqlite`;
      await write(path);
      const before = Deno.readFileSync(path);
      await assert.rejects(() => openStore(path, { now: NOW }), errorClass);
      assert.deepEqual(Deno.readFileSync(path), before, "the file is left as it was");
    });
  }
  await t.step("a folder that does not exist", async () => {
    await assert.rejects(
      () => openStore(`${dir.path}/missing/relay.sqlite`, { now: NOW }),
      (error: unknown) => error instanceof DatabaseError && error.code === "database_unusable",
    );
  });
});

Deno.test("Store.transaction() rolls back every statement, audit rows included, when the body throws", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = await openStore(path, { now: NOW });
  try {
    await assert.rejects(() =>
      store.transaction(async (tx) => {
        const pool = await tx.insertPool("prod", NOW);
        await tx.audit({
          event: EventType.licenseAdded,
          entity: EntityType.license,
          entityId: 1,
          poolId: pool.id,
          now: NOW,
        });
        throw new Error("boom");
      }), /boom/);
    assert.equal(await store.read((tx) => tx.poolByName("prod")), undefined);
  } finally {
    await store.close();
  }
  assert.equal(query(path, "SELECT count(*) AS n FROM audit_logs")[0].n, 0);
});

Deno.test("Tx.audit() writes nothing when audit is off", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = await openStore(path, { now: NOW, audit: false });
  try {
    await store.transaction(async (tx) => {
      await tx.insertPool("prod", NOW);
      await tx.audit({
        event: EventType.poolAdded,
        entity: EntityType.pool,
        entityId: 1,
        poolId: null,
        now: NOW,
      });
    });
  } finally {
    await store.close();
  }
  assert.equal(query(path, "SELECT count(*) AS n FROM pools")[0].n, 1);
  assert.equal(query(path, "SELECT count(*) AS n FROM audit_logs")[0].n, 0);
});

Deno.test("openStore() applies extra pragmas", async () => {
  await using dir = await tempDir();
  const store = await openStore(`${dir.path}/relay.sqlite`, {
    now: NOW,
    pragmas: { user_version: "7" },
  });
  await store.close();
  assert.equal(query(`${dir.path}/relay.sqlite`, "PRAGMA user_version")[0].user_version, 7);
});

Deno.test("Store.transaction() with durable: false skips the fsync of its commit only", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = openSqliteStore(path, { now: NOW, pragmas: { synchronous: "EXTRA" } });
  try {
    assert.equal(store.synchronous, 3);
    const inside = await store.transaction(async (tx) => {
      await tx.insertPool("prod", NOW);
      return store.synchronous;
    }, { durable: false });
    assert.equal(inside, 1, "NORMAL: written to the WAL, not fsynced");
    assert.equal(store.synchronous, 3, "the configured level is back for the next commit");
    await assert.rejects(() =>
      store.transaction(async (tx) => {
        await tx.insertPool("dev", NOW);
        throw new Error("boom");
      }, { durable: false }), /boom/);
    assert.equal(store.synchronous, 3, "restored after a rollback too");
  } finally {
    await store.close();
  }
  assert.deepEqual(query(path, "SELECT name FROM pools"), [{ name: "prod" }]);
});

Deno.test("Store.transaction() with group commit never puts a relaxed body in a durable group", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = openSqliteStore(path, { now: NOW, groupCommit: true });
  try {
    const level = () => Promise.resolve(store.synchronous);
    const seen = await Promise.all([
      store.transaction(level),
      store.transaction(level, { durable: false }),
      store.transaction(level),
      store.read(level),
    ]);
    assert.deepEqual(seen, [2, 1, 2, 2]);
  } finally {
    await store.close();
  }
});

Deno.test("Store.close() finishes queued transactions, then refuses new ones", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = await openStore(path, { now: NOW });
  const pending = store.transaction((tx) => tx.insertPool("prod", NOW));
  await store.close();
  assert.equal((await pending).name, "prod");
  await assert.rejects(() => store.read((tx) => tx.poolByName("prod")), /closed/);
  assert.deepEqual(query(path, "SELECT name FROM pools"), [{ name: "prod" }]);
});
