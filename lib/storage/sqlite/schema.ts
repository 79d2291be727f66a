/**
 * The SQLite schema as an ordered list of numbered steps.
 *
 * Step 1 is the final schema of the reference Relay (keygen-sh/keygen-relay,
 * golang-migrate version {@link REFERENCE_SCHEMA_VERSION}); it also writes that
 * version into golang-migrate's `schema_migrations` table, so the reference
 * Relay can open a database that we created. A database that the reference
 * Relay created is recognised by that table and starts from step 2.
 *
 * Steps are applied in one transaction by `migrate()` (`./migrate.ts`) and recorded in
 * `relay_migrations`. Never edit a released step: append a new one.
 *
 * @module
 */

/** One schema step. */
export interface Migration {
  /** Position in the list, starting at 1, without gaps. */
  readonly version: number;
  /** Short description, recorded beside the version. */
  readonly name: string;
  /** SQL statements, run with `exec`. */
  readonly sql: string;
}

/** The last golang-migrate version of the reference Relay's schema (1.3.0-beta.1). */
export const REFERENCE_SCHEMA_VERSION = 1755607637;

/**
 * Step 3's trigger statement that appends `row`'s license to its pool's free
 * slots. Part of a released step: never change it.
 */
function addSlot(row: "NEW" | "OLD"): string {
  const pool = `IFNULL(${row}.pool_id, 0)`;
  return `INSERT INTO free_slots (pool_key, pos, license_id) VALUES (${pool},
    (SELECT IFNULL(max(pos), 0) + 1 FROM free_slots WHERE pool_key = ${pool}), ${row}.id);`;
}

/**
 * Step 3's trigger statements that take `row`'s license out of its pool's
 * free slots, moving the last slot into its position. Never change them.
 */
function removeSlot(row: "NEW" | "OLD"): string {
  const pool = `IFNULL(${row}.pool_id, 0)`;
  return `UPDATE free_slots SET license_id = (SELECT last.license_id FROM free_slots last
      WHERE last.pool_key = ${pool} ORDER BY last.pos DESC LIMIT 1)
    WHERE pool_key = ${pool} AND pos = (SELECT pos FROM free_slots WHERE license_id = ${row}.id);
  DELETE FROM free_slots WHERE pool_key = ${pool}
    AND pos = (SELECT max(pos) FROM free_slots WHERE pool_key = ${pool});`;
}

/**
 * Bits of a license id that each level of `free_counts` groups: a level-1
 * bucket holds 64 consecutive ids, a level-2 bucket 64 level-1 buckets, a
 * level-3 bucket 64 level-2 buckets. Part of a released step: never change it.
 */
export const FREE_COUNT_SHIFTS: readonly number[] = [6, 12, 18];

/**
 * Step 5's trigger statement that adds `delta` to the free counts of `row`'s
 * license at every level. Part of a released step: never change it.
 */
function countFree(row: "NEW" | "OLD", delta: 1 | -1): string {
  const pool = `IFNULL(${row}.pool_id, 0)`;
  const values = FREE_COUNT_SHIFTS.map((shift, i) =>
    `(${pool}, ${i + 1}, ${row}.id >> ${shift}, ${delta})`
  );
  return `INSERT INTO free_counts (pool_key, level, bucket, free) VALUES ${values.join(", ")}
    ON CONFLICT (pool_key, level, bucket) DO UPDATE SET free = free + excluded.free;`;
}

/**
 * The last moment a license may be handed out, in unix seconds: the earlier
 * of its file's expiry (`meta.expiry`) and the license's own, or the largest
 * integer when it has neither. A license is valid at `now` while this is
 * greater than `now`. Step 7 indexes this exact expression, and SQLite uses
 * the index only for queries that spell it the same way: never change it.
 */
export const VALID_UNTIL = "min(IFNULL(file_expires_at, 9223372036854775807), " +
  "IFNULL(expires_at, 9223372036854775807))";

/** Every schema step, oldest first. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "reference relay schema",
    sql: `
      CREATE TABLE nodes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        fingerprint TEXT UNIQUE NOT NULL,
        last_heartbeat_at INTEGER,
        created_at INTEGER NOT NULL DEFAULT (unixepoch()),
        deactivated_at INTEGER
      );
      CREATE INDEX idx_nodes_activated ON nodes (deactivated_at) WHERE deactivated_at IS NULL;
      CREATE INDEX idx_nodes_last_heartbeat ON nodes (last_heartbeat_at);

      CREATE TABLE pools (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT UNIQUE NOT NULL,
        created_at INTEGER NOT NULL DEFAULT (unixepoch())
      );

      CREATE TABLE licenses (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        guid TEXT UNIQUE NOT NULL,
        file BLOB UNIQUE NOT NULL,
        key TEXT UNIQUE NOT NULL,
        claims INTEGER DEFAULT 0 NOT NULL,
        last_claimed_at INTEGER,
        last_released_at INTEGER,
        node_id INTEGER UNIQUE,
        pool_id INTEGER,
        created_at INTEGER NOT NULL DEFAULT (unixepoch()),
        FOREIGN KEY (node_id) REFERENCES nodes(id) ON DELETE SET NULL,
        FOREIGN KEY (pool_id) REFERENCES pools(id) ON DELETE SET NULL
      );
      CREATE INDEX idx_licenses_pool_node ON licenses (pool_id, node_id);

      CREATE TABLE event_types (id TINYINT PRIMARY KEY, name TEXT NOT NULL);
      INSERT INTO event_types (id, name) VALUES
        (0, 'unknown'),
        (1, 'license.added'),
        (2, 'license.removed'),
        (3, 'license.leased'),
        (4, 'license.lease_extended'),
        (5, 'license.released'),
        (6, 'license.lease_expired'),
        (7, 'node.activated'),
        (8, 'node.heartbeat_ping'),
        (9, 'node.deactivated'),
        (10, 'node.culled'),
        (11, 'pool.added');

      CREATE TABLE entity_types (id TINYINT PRIMARY KEY, name TEXT NOT NULL);
      INSERT INTO entity_types (id, name) VALUES
        (0, 'unknown'),
        (1, 'license'),
        (2, 'node'),
        (3, 'pool');

      CREATE TABLE audit_logs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_type_id TINYINT NOT NULL REFERENCES event_types (id),
        entity_type_id TINYINT NOT NULL REFERENCES entity_types (id),
        entity_id INTEGER NOT NULL,
        created_at INTEGER NOT NULL DEFAULT (unixepoch()),
        pool_id INTEGER
      );

      CREATE TABLE schema_migrations (version uint64, dirty bool);
      CREATE UNIQUE INDEX version_unique ON schema_migrations (version);
      INSERT INTO schema_migrations (version, dirty) VALUES (${REFERENCE_SCHEMA_VERSION}, 0);
    `,
  },
  {
    version: 2,
    name: "license file dates",
    // Read from the verified file when it is added, so `ls` and `stat` can show
    // them without decrypting. NULL for licenses added by the reference Relay.
    sql: `
      ALTER TABLE licenses ADD COLUMN file_issued_at INTEGER;
      ALTER TABLE licenses ADD COLUMN file_expires_at INTEGER;
      ALTER TABLE licenses ADD COLUMN expires_at INTEGER;
    `,
  },
  {
    version: 3,
    name: "lease indexes and free slots",
    // idx_nodes_active_heartbeat: the reaper finds expired leases without a scan.
    // free_slots numbers the free licenses of each pool 1..F (pool_key 0 for
    // licenses without a pool), so `rand` picks one uniformly in O(log n).
    // Triggers keep it in step with every write to licenses, whoever makes it;
    // a removal moves the pool's last slot into the freed position.
    sql: `
      CREATE INDEX idx_nodes_active_heartbeat ON nodes (last_heartbeat_at)
        WHERE deactivated_at IS NULL;

      CREATE TABLE free_slots (
        pool_key INTEGER NOT NULL,
        pos INTEGER NOT NULL,
        license_id INTEGER NOT NULL,
        PRIMARY KEY (pool_key, pos)
      ) WITHOUT ROWID;
      CREATE INDEX idx_free_slots_license ON free_slots (license_id);
      INSERT INTO free_slots (pool_key, pos, license_id)
        SELECT IFNULL(pool_id, 0), row_number() OVER (PARTITION BY IFNULL(pool_id, 0) ORDER BY id), id
        FROM licenses WHERE node_id IS NULL;

      CREATE TRIGGER free_slots_add_inserted AFTER INSERT ON licenses
      WHEN NEW.node_id IS NULL
      BEGIN ${addSlot("NEW")} END;

      CREATE TRIGGER free_slots_add_released AFTER UPDATE OF node_id ON licenses
      WHEN OLD.node_id IS NOT NULL AND NEW.node_id IS NULL
      BEGIN ${addSlot("NEW")} END;

      CREATE TRIGGER free_slots_remove_leased AFTER UPDATE OF node_id ON licenses
      WHEN OLD.node_id IS NULL AND NEW.node_id IS NOT NULL
      BEGIN ${removeSlot("OLD")} END;

      CREATE TRIGGER free_slots_remove_deleted AFTER DELETE ON licenses
      WHEN OLD.node_id IS NULL
      BEGIN ${removeSlot("OLD")} END;

      CREATE TRIGGER free_slots_move_pool AFTER UPDATE OF pool_id ON licenses
      WHEN OLD.node_id IS NULL AND NEW.node_id IS NULL
        AND IFNULL(OLD.pool_id, 0) <> IFNULL(NEW.pool_id, 0)
      BEGIN ${removeSlot("OLD")} ${addSlot("NEW")} END;
    `,
  },
  {
    version: 4,
    name: "audit log by time",
    // Lets --audit-retention prune old records without a scan.
    sql: `CREATE INDEX idx_audit_logs_created_at ON audit_logs (created_at);`,
  },
  {
    version: 5,
    name: "free counts instead of free slots",
    // free_slots made every lease and release, whatever the strategy, write
    // three random pages (the slot, its license's index entry, and the moved
    // slot's). free_counts counts the free licenses of each pool per block of
    // 64 ids (level 1), of 4,096 (level 2) and of 262,144 (level 3): a
    // change writes three counters in a table of a few pages, and `rand`
    // finds the k-th free license by walking the levels, then at most 63
    // entries of idx_licenses_pool_node.
    sql: `
      DROP TRIGGER free_slots_add_inserted;
      DROP TRIGGER free_slots_add_released;
      DROP TRIGGER free_slots_remove_leased;
      DROP TRIGGER free_slots_remove_deleted;
      DROP TRIGGER free_slots_move_pool;
      DROP TABLE free_slots;

      CREATE TABLE free_counts (
        pool_key INTEGER NOT NULL,
        level INTEGER NOT NULL,
        bucket INTEGER NOT NULL,
        free INTEGER NOT NULL,
        PRIMARY KEY (pool_key, level, bucket)
      ) WITHOUT ROWID;
      ${
      FREE_COUNT_SHIFTS.map((shift, i) =>
        `INSERT INTO free_counts (pool_key, level, bucket, free)
          SELECT IFNULL(pool_id, 0), ${i + 1}, id >> ${shift}, count(*)
          FROM licenses WHERE node_id IS NULL GROUP BY 1, 3;`
      ).join("\n")
    }

      CREATE TRIGGER free_counts_inserted AFTER INSERT ON licenses
      WHEN NEW.node_id IS NULL
      BEGIN ${countFree("NEW", 1)} END;

      CREATE TRIGGER free_counts_released AFTER UPDATE OF node_id ON licenses
      WHEN OLD.node_id IS NOT NULL AND NEW.node_id IS NULL
      BEGIN ${countFree("NEW", 1)} END;

      CREATE TRIGGER free_counts_leased AFTER UPDATE OF node_id ON licenses
      WHEN OLD.node_id IS NULL AND NEW.node_id IS NOT NULL
      BEGIN ${countFree("OLD", -1)} END;

      CREATE TRIGGER free_counts_deleted AFTER DELETE ON licenses
      WHEN OLD.node_id IS NULL
      BEGIN ${countFree("OLD", -1)} END;

      CREATE TRIGGER free_counts_moved AFTER UPDATE OF pool_id ON licenses
      WHEN OLD.node_id IS NULL AND NEW.node_id IS NULL
        AND IFNULL(OLD.pool_id, 0) <> IFNULL(NEW.pool_id, 0)
      BEGIN ${countFree("OLD", -1)} ${countFree("NEW", 1)} END;
    `,
  },
  {
    version: 6,
    name: "lease expiry stored with each lease",
    // Each lease keeps the expiry it was granted or extended with, so servers
    // with different --ttl on one database never cut each other's leases.
    // NULL: a lease from before this step, or from Keygen Relay (its expiry
    // is the last heartbeat plus the reader's ttl), or one that never expires
    // (--no-heartbeats). The index replaces idx_nodes_active_heartbeat: it
    // finds both kinds of expired lease without a scan, and a heartbeat still
    // changes one entry of it.
    sql: `
      ALTER TABLE nodes ADD COLUMN lease_expires_at INTEGER;
      DROP INDEX idx_nodes_active_heartbeat;
      CREATE INDEX idx_nodes_active_expiry ON nodes (lease_expires_at, last_heartbeat_at)
        WHERE deactivated_at IS NULL;
    `,
  },
  {
    version: 7,
    name: "valid free licenses and write probe",
    // idx_licenses_pool_valid_until: the free licenses of each pool by the moment
    // they stop being valid, so a claim learns in one lookup whether any
    // valid license is free, and `rand` can count and index the valid ones
    // when most free ones have expired, from the index alone (node_id makes
    // it covering). Partial: only free licenses, so a lease or release changes
    // one entry, as it does in idx_licenses_pool_node.
    // relay_health holds one row that `Store.probeWrite` rewrites to prove
    // the database still accepts writes (`relay serve` at start and on
    // `/v1/health`).
    sql: `
      CREATE INDEX idx_licenses_pool_valid_until
        ON licenses (pool_id, ${VALID_UNTIL}, node_id) WHERE node_id IS NULL;

      CREATE TABLE relay_health (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        probes INTEGER NOT NULL,
        probed_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 8,
    name: "operator and denial audit events",
    // New rows only: the reference's ids 0-11 and its documented audit
    // queries are unchanged. license.denied is written for a 410 (entity: the
    // node); license.operator_released when an operator ends a lease with
    // `relay release` (entity: the license).
    sql: `
      INSERT OR IGNORE INTO event_types (id, name) VALUES
        (12, 'license.denied'),
        (13, 'license.operator_released');
    `,
  },
  {
    version: 9,
    name: "license renewal audit event",
    // license.renewed: `relay add` replaced a license's file with a newer one
    // in place (entity: the license).
    sql: `
      INSERT OR IGNORE INTO event_types (id, name) VALUES (14, 'license.renewed');
    `,
  },
  {
    version: 10,
    name: "user seats",
    // Users (`PUT /v1/users/{email}`) hold leases as nodes do, as rows of
    // `nodes`, so that licenses.node_id, its indexes, the free-license
    // counters and their triggers, the reaper and every lease query serve
    // both unchanged (one lease implementation; a separate table would need a
    // second foreign key on licenses and a copy of all of that).
    // `holder_type` tells them apart: the entity type id, 2 node (the default,
    // so rows written by Keygen Relay or before this step are nodes), 4 user.
    // `nodes.fingerprint` is UNIQUE since the reference's schema, so a user's
    // key there is its lowercase email behind U+0001 'user:': a control
    // character, which the API refuses in a node fingerprint, so the two can
    // never collide. New event types keep the reference's node.* queries
    // about machines: user.activated, user.heartbeat_ping, user.deactivated,
    // user.culled (entity: the user); license.* events stay shared.
    sql: `
      ALTER TABLE nodes ADD COLUMN holder_type INTEGER NOT NULL DEFAULT 2;
      INSERT OR IGNORE INTO entity_types (id, name) VALUES (4, 'user');
      INSERT OR IGNORE INTO event_types (id, name) VALUES
        (15, 'user.activated'),
        (16, 'user.heartbeat_ping'),
        (17, 'user.deactivated'),
        (18, 'user.culled');
    `,
  },
  {
    version: 11,
    name: "multi-seat licenses",
    // `relay add --seats N` stores a license as its row (the main row) plus
    // N-1 seat rows that point to it (`seat_of`); each seat row is leased like
    // any license row (licenses.node_id stays UNIQUE, as in the reference's
    // schema), so the free-license counters, their triggers, the strategies
    // and the reaper serve seats unchanged. A seat row copies the main row's
    // pool and dates; its guid, key and file are fillers that only satisfy
    // the reference's UNIQUE constraints (`<guid>#seat-2`): Relay hands out
    // the main row's file, key and id, and records audit rows under the main
    // row's id. `max_machines` and `max_users`: the limits the license file
    // states (data.attributes), read when it is added; NULL before this step.
    // Additive: the reference Relay still opens the database (it sees each
    // seat row as a license of its own).
    sql: `
      ALTER TABLE licenses ADD COLUMN seat_of INTEGER REFERENCES licenses (id) ON DELETE CASCADE;
      ALTER TABLE licenses ADD COLUMN max_machines INTEGER;
      ALTER TABLE licenses ADD COLUMN max_users INTEGER;
      CREATE INDEX idx_licenses_seat_of ON licenses (seat_of) WHERE seat_of IS NOT NULL;
    `,
  },
];
