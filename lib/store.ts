/**
 * The SQLite store: opening, pragmas, migrations, transactions, and every SQL
 * statement Relay runs, each prepared once per connection.
 *
 * Uses `node:sqlite` (compiled into the Deno binary: no FFI, no native library
 * to ship). `node:sqlite` is synchronous, so a transaction opened with
 * {@link Store.transaction} cannot interleave with another request of the same
 * process; `BEGIN IMMEDIATE` and a busy timeout serialise it against other
 * processes that share the file.
 *
 * Times are unix seconds throughout; callers pass `now`, the store never reads
 * the clock.
 *
 * @module
 */

import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { EntityType, EventType } from "./audit.ts";
import { DatabaseError, DatabaseTooNewError } from "./errors.ts";
import {
  FREE_COUNT_SHIFTS,
  type Migration,
  MIGRATIONS,
  REFERENCE_SCHEMA_VERSION,
} from "./migrations.ts";

/** Options of {@link openStore}. */
export interface StoreOptions {
  /** Write audit rows (default true); false makes {@link Store.audit} a no-op. */
  audit?: boolean;
  /** Extra `PRAGMA key = value` settings, applied after Relay's own. */
  pragmas?: Readonly<Record<string, string>>;
  /** How long to wait for another process's write lock, in ms (default 5000). */
  busyTimeoutMs?: number;
  /** Current unix time in seconds, recorded with applied migrations. */
  now: number;
}

/** SQLite's default `wal_autocheckpoint`, in pages. */
export const DEFAULT_AUTOCHECKPOINT = 1000;

/** A row of `pools`. */
export interface Pool {
  id: number;
  name: string;
  createdAt: number;
}

/** A license as `ls` and `stat` show it: no file bytes, no key. */
export interface LicenseInfo {
  id: number;
  guid: string;
  poolId: number | null;
  poolName: string | null;
  claims: number;
  nodeId: number | null;
  nodeFingerprint: string | null;
  nodeLastHeartbeatAt: number | null;
  lastClaimedAt: number | null;
  lastReleasedAt: number | null;
  createdAt: number;
  fileIssuedAt: number | null;
  fileExpiresAt: number | null;
  expiresAt: number | null;
}

/** The columns of a license to insert. */
export interface NewLicenseRow {
  guid: string;
  file: Uint8Array;
  key: string;
  poolId: number | null;
  fileIssuedAt: number | null;
  fileExpiresAt: number | null;
  expiresAt: number | null;
}

/** A node that has not been deactivated. */
export interface ActiveNode {
  id: number;
  /** Unix seconds; null for a node that never got a lease (reference Relay). */
  lastHeartbeatAt: number | null;
}

/** A license as the lease logic sees it. */
export interface LeasedLicense {
  id: number;
  poolId: number | null;
}

/** What a node receives with a new lease. */
export interface LicenseGrant {
  /** The license file exactly as added. */
  file: Uint8Array;
  /** The license key. */
  key: string;
}

const LICENSE_INFO_SELECT = `
  SELECT l.id AS id, l.guid AS guid, l.pool_id AS poolId, p.name AS poolName,
         l.claims AS claims, l.node_id AS nodeId, n.fingerprint AS nodeFingerprint,
         n.last_heartbeat_at AS nodeLastHeartbeatAt, l.last_claimed_at AS lastClaimedAt,
         l.last_released_at AS lastReleasedAt, l.created_at AS createdAt,
         l.file_issued_at AS fileIssuedAt, l.file_expires_at AS fileExpiresAt,
         l.expires_at AS expiresAt
  FROM licenses l
  LEFT JOIN pools p ON p.id = l.pool_id
  LEFT JOIN nodes n ON n.id = l.node_id`;

/**
 * An open Relay database. Create it with {@link openStore}; close it with
 * {@link Store.close}.
 */
export class Store {
  readonly #db: DatabaseSync;
  readonly #audit: boolean;
  readonly #path: string;
  readonly #statements = new Map<string, StatementSync>();
  #inTransaction = false;
  #inGroup = false;
  #afterCommit: (() => void) | null = null;

  /** Use {@link openStore}: it applies pragmas and migrations first. */
  constructor(db: DatabaseSync, options: { audit: boolean; path: string }) {
    this.#db = db;
    this.#audit = options.audit;
    this.#path = options.path;
  }

  /**
   * Calls `listener` after each commit of a transaction or group (not of a
   * savepoint inside a group); `null` removes it. `relay serve` uses it to
   * ask its background checkpointer to copy the new pages.
   */
  onCommit(listener: (() => void) | null): void {
    this.#afterCommit = listener;
  }

  /**
   * Sets after how many WAL pages a commit on this connection checkpoints
   * (SQLite's default: {@link DEFAULT_AUTOCHECKPOINT}).
   */
  setAutoCheckpoint(pages: number): void {
    this.#db.exec(`PRAGMA wal_autocheckpoint = ${Math.trunc(pages)}`);
  }

  /** The connection's `wal_autocheckpoint`, in pages. */
  get autoCheckpoint(): number {
    return Number(this.#statement("PRAGMA wal_autocheckpoint").get()?.wal_autocheckpoint);
  }

  /** Whether audit rows are written. */
  get auditEnabled(): boolean {
    return this.#audit;
  }

  /**
   * Runs `fn` atomically: inside `BEGIN IMMEDIATE` … `COMMIT`, rolling back if
   * it throws; inside a {@link group}, as a savepoint of the group's
   * transaction, so a failure undoes only `fn`. `fn` must be synchronous: an
   * `await` inside would let other work see an open transaction.
   * Transactions do not nest.
   *
   * `durable: false` commits without an fsync, for changes that no client is
   * told about and that are safe to redo (the reaper's). The next durable
   * commit fsyncs them too (the WAL is one file, appended in order), so a
   * power loss can drop them only with everything after them; a crash of the
   * process loses nothing. Inside a group it changes nothing.
   */
  transaction<T>(fn: () => T, options: { durable?: boolean } = {}): T {
    if (options.durable === false && !this.#inGroup) {
      return this.#withoutFsync(() => this.transaction(fn));
    }
    if (this.#inTransaction) throw new Error("Transactions do not nest");
    if (this.#inGroup && !this.#db.isTransaction) {
      // SQLite rolled the group back (e.g. a full disk): nothing may commit alone.
      throw new DatabaseError(`Database "${this.#path}" failed: the transaction was rolled back`);
    }
    const [begin, commit, rollback] = this.#inGroup
      ? ["SAVEPOINT tx", "RELEASE tx", "ROLLBACK TO tx; RELEASE tx"]
      : ["BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"];
    this.#inTransaction = true;
    try {
      return this.#atomically(fn, begin, commit, rollback);
    } finally {
      this.#inTransaction = false;
    }
  }

  /** The connection's `PRAGMA synchronous` level: 2 (FULL) unless a pragma set another. */
  get synchronous(): number {
    return Number(this.#statement("PRAGMA synchronous").get()?.synchronous);
  }

  /** Runs `fn` with `synchronous = NORMAL`, then restores the configured level. */
  #withoutFsync<T>(fn: () => T): T {
    const level = this.synchronous;
    if (level <= 1) return fn();
    this.#db.exec("PRAGMA synchronous = NORMAL");
    try {
      return fn();
    } finally {
      this.#db.exec(`PRAGMA synchronous = ${level}`);
    }
  }

  /**
   * Group commit: runs `fn`, which makes several {@link transaction} calls,
   * inside one `BEGIN IMMEDIATE` … `COMMIT`, so they share one fsync. Each
   * inner transaction stays atomic on its own (a savepoint); none is durable
   * before this returns, so callers acknowledge nothing until then.
   */
  group<T>(fn: () => T): T {
    if (this.#inGroup || this.#inTransaction) throw new Error("Groups do not nest");
    this.#inGroup = true;
    try {
      return this.#atomically(fn, "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK");
    } finally {
      this.#inGroup = false;
    }
  }

  #atomically<T>(fn: () => T, begin: string, commit: string, rollback: string): T {
    try {
      this.#db.exec(begin);
      try {
        const result = fn();
        if (result instanceof Promise) {
          throw new Error("A transaction body must be synchronous");
        }
        this.#db.exec(commit);
        if (begin === "BEGIN IMMEDIATE") this.#afterCommit?.();
        return result;
      } catch (error) {
        // SQLite may have rolled back already (e.g. on a full disk).
        if (this.#db.isTransaction) this.#db.exec(rollback);
        throw error;
      }
    } catch (error) {
      throw asDatabaseError(error, this.#path);
    }
  }

  /**
   * Checkpoints the WAL into the database file (as far as other connections
   * allow) and closes the connection.
   */
  close(): void {
    this.#statements.clear();
    try {
      // PASSIVE: never waits for another process; the last connection to close
      // checkpoints fully and removes the WAL anyway. Best effort: on a full
      // disk the data stays safe in the WAL, and the error that matters has
      // been reported already.
      this.#db.exec("PRAGMA wal_checkpoint(PASSIVE)");
    } catch {
      // Nothing to add.
    }
    this.#db.close();
  }

  /**
   * Records one audit row (unless audit is off). Call it inside the
   * transaction of the change it records.
   */
  audit(
    event: EventType,
    entity: EntityType,
    entityId: number,
    poolId: number | null,
    now: number,
  ): void {
    if (!this.#audit) return;
    this.#run(
      `INSERT INTO audit_logs (event_type_id, entity_type_id, entity_id, pool_id, created_at)
       VALUES (?, ?, ?, ?, ?)`,
      event,
      entity,
      entityId,
      poolId,
      now,
    );
  }

  /** The pool with this name, if any. */
  poolByName(name: string): Pool | undefined {
    return this.#get<Pool>(
      "SELECT id, name, created_at AS createdAt FROM pools WHERE name = ?",
      name,
    );
  }

  /** Creates a pool and records `pool.added`. */
  insertPool(name: string, now: number): Pool {
    const pool = this.#get<Pool>(
      `INSERT INTO pools (name, created_at) VALUES (?, ?)
       RETURNING id, name, created_at AS createdAt`,
      name,
      now,
    )!;
    this.audit(EventType.poolAdded, EntityType.pool, pool.id, null, now);
    return pool;
  }

  /** The guid of a stored license that has this guid, key or file, if any. */
  conflictingLicense(
    guid: string,
    key: string,
    file: Uint8Array,
  ): string | undefined {
    return this.#get<{ guid: string }>(
      "SELECT guid FROM licenses WHERE guid = ? OR key = ? OR file = ? LIMIT 1",
      guid,
      key,
      file,
    )?.guid;
  }

  /** Inserts a license and returns its row id. */
  insertLicense(row: NewLicenseRow, now: number): number {
    return this.#get<{ id: number }>(
      `INSERT INTO licenses
         (guid, file, key, pool_id, created_at, file_issued_at, file_expires_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
      row.guid,
      row.file,
      row.key,
      row.poolId,
      now,
      row.fileIssuedAt,
      row.fileExpiresAt,
      row.expiresAt,
    )!.id;
  }

  /** One license by its Keygen id. */
  licenseByGuid(guid: string): LicenseInfo | undefined {
    return this.#get<LicenseInfo>(`${LICENSE_INFO_SELECT} WHERE l.guid = ?`, guid);
  }

  /** All licenses in the order they were added, or those of one pool. */
  licenses(filter: { poolId?: number } = {}): LicenseInfo[] {
    if (filter.poolId === undefined) {
      return this.#all<LicenseInfo>(`${LICENSE_INFO_SELECT} ORDER BY l.id`);
    }
    return this.#all<LicenseInfo>(
      `${LICENSE_INFO_SELECT} WHERE l.pool_id = ? ORDER BY l.id`,
      filter.poolId,
    );
  }

  /** Deletes a license by row id. */
  deleteLicense(id: number): void {
    this.#run("DELETE FROM licenses WHERE id = ?", id);
  }

  /** The active (not deactivated) node with this fingerprint. */
  activeNode(fingerprint: string): ActiveNode | undefined {
    return this.#get<ActiveNode>(
      `SELECT id, last_heartbeat_at AS lastHeartbeatAt FROM nodes
       WHERE fingerprint = ? AND deactivated_at IS NULL`,
      fingerprint,
    );
  }

  /**
   * Inserts the node, or reactivates it if it was deactivated, with its
   * heartbeat at `now`; returns its id.
   */
  activateNode(fingerprint: string, now: number): number {
    return this.#get<{ id: number }>(
      `INSERT INTO nodes (fingerprint, last_heartbeat_at, created_at) VALUES (?, ?, ?)
       ON CONFLICT (fingerprint) DO UPDATE
         SET deactivated_at = NULL, last_heartbeat_at = excluded.last_heartbeat_at
       RETURNING id`,
      fingerprint,
      now,
      now,
    )!.id;
  }

  /** Records a heartbeat of the node at `now`. */
  heartbeat(nodeId: number, now: number): void {
    this.#run("UPDATE nodes SET last_heartbeat_at = ? WHERE id = ?", now, nodeId);
  }

  /** Marks the node deactivated at `now`. */
  deactivateNode(nodeId: number, now: number): void {
    this.#run("UPDATE nodes SET deactivated_at = ? WHERE id = ?", now, nodeId);
  }

  /** The license the node leases, in any pool. */
  licenseLeasedBy(nodeId: number): LeasedLicense | undefined {
    return this.#get<LeasedLicense>(
      "SELECT id, pool_id AS poolId FROM licenses WHERE node_id = ?",
      nodeId,
    );
  }

  /** The free license of a pool (null: no pool) added first, or last. */
  firstFreeLicense(poolId: number | null, order: "first" | "last"): number | undefined {
    return this.#get<{ id: number }>(
      order === "first"
        ? "SELECT id FROM licenses WHERE pool_id IS ? AND node_id IS NULL ORDER BY id LIMIT 1"
        : "SELECT id FROM licenses WHERE pool_id IS ? AND node_id IS NULL ORDER BY id DESC LIMIT 1",
      poolId,
    )?.id;
  }

  /** How many licenses of a pool are free (null: no pool). */
  freeLicenseCount(poolId: number | null): number {
    return this.#get<{ n: number }>(
      "SELECT IFNULL(sum(free), 0) AS n FROM free_counts WHERE pool_key = IFNULL(?, 0) AND level = ?",
      poolId,
      FREE_COUNT_SHIFTS.length,
    )!.n;
  }

  /**
   * The ids between which a pool's free licenses lie (null: no pool), from
   * the first and last level-1 counters; undefined if it never had one.
   * Blocks that have no free license left may widen the range.
   */
  freeLicenseIdRange(poolId: number | null): { low: number; high: number } | undefined {
    const row = this.#get<{ low: number | null; high: number | null }>(
      `SELECT
         (SELECT min(bucket) FROM free_counts WHERE pool_key = IFNULL(?1, 0) AND level = 1) AS low,
         (SELECT max(bucket) FROM free_counts WHERE pool_key = IFNULL(?1, 0) AND level = 1) AS high`,
      poolId,
    );
    if (row?.low == null || row.high == null) return undefined;
    const width = 2 ** FREE_COUNT_SHIFTS[0];
    return { low: row.low * width, high: (row.high + 1) * width - 1 };
  }

  /** Whether license `id` is a free license of the pool (null: no pool). */
  isFreeLicense(poolId: number | null, id: number): boolean {
    return this.#get(
      "SELECT 1 AS free FROM licenses WHERE pool_id IS ? AND node_id IS NULL AND id = ?",
      poolId,
      id,
    ) !== undefined;
  }

  /**
   * The free license of a pool (null: no pool) at `index` (0 …
   * {@link freeLicenseCount} − 1) in id order: from the top level of
   * `free_counts` down, the bucket where the running count passes `index`,
   * then the remaining offset among at most 64 ids.
   */
  freeLicenseAt(poolId: number | null, index: number): number | undefined {
    let rest = index;
    let low = 0;
    let high = Number.MAX_SAFE_INTEGER;
    for (let level = FREE_COUNT_SHIFTS.length; level >= 1; level--) {
      const found = this.#get<{ bucket: number; before: number }>(
        `SELECT bucket, before FROM (
           SELECT bucket, free, sum(free) OVER (ORDER BY bucket) - free AS before
           FROM free_counts WHERE pool_key = IFNULL(?, 0) AND level = ? AND bucket BETWEEN ? AND ?
         ) WHERE before <= ? AND before + free > ?`,
        poolId,
        level,
        low,
        high,
        rest,
        rest,
      );
      if (!found) return undefined;
      rest -= found.before;
      // The bucket's ids, or its buckets one level down: 64 of them either way.
      const width = 2 ** (FREE_COUNT_SHIFTS[level - 1] - (FREE_COUNT_SHIFTS[level - 2] ?? 0));
      low = found.bucket * width;
      high = low + width - 1;
    }
    return this.#get<{ id: number }>(
      `SELECT id FROM licenses WHERE pool_id IS ? AND node_id IS NULL AND id BETWEEN ? AND ?
       ORDER BY id LIMIT 1 OFFSET ?`,
      poolId,
      low,
      high,
      rest,
    )?.id;
  }

  /**
   * Leases a free license to a node at `now` and returns what the node
   * receives; undefined if the license is not free.
   */
  leaseLicense(licenseId: number, nodeId: number, now: number): LicenseGrant | undefined {
    return this.#get<LicenseGrant>(
      `UPDATE licenses SET node_id = ?, last_claimed_at = ?, claims = claims + 1
       WHERE id = ? AND node_id IS NULL
       RETURNING file, key`,
      nodeId,
      now,
      licenseId,
    );
  }

  /** Ends the lease on a license at `now`. */
  releaseLicense(licenseId: number, now: number): void {
    this.#run(
      "UPDATE licenses SET node_id = NULL, last_released_at = ? WHERE id = ?",
      now,
      licenseId,
    );
  }

  /**
   * Reaps up to `limit` active nodes whose last heartbeat is at or before
   * `cutoff`, oldest first: releases the license each leases
   * (`license.lease_expired`) and deactivates it (`node.culled`), at `now`.
   * Set-based, a few statements per batch; call it inside a transaction.
   * Returns how many nodes were reaped.
   */
  reapExpired(cutoff: number, limit: number, now: number): number {
    this.#db.exec(`CREATE TEMP TABLE IF NOT EXISTS reap_batch (
      seq INTEGER PRIMARY KEY, node_id INTEGER NOT NULL, license_id INTEGER, pool_id INTEGER)`);
    this.#run("DELETE FROM temp.reap_batch");
    // The index is named: without statistics SQLite picks idx_nodes_activated
    // and sorts every active node for each batch.
    const reaped = Number(
      this.#statement(
        `INSERT INTO temp.reap_batch (node_id, license_id, pool_id)
         SELECT n.id, l.id, l.pool_id
         FROM nodes n INDEXED BY idx_nodes_active_heartbeat
         LEFT JOIN licenses l ON l.node_id = n.id
         WHERE n.deactivated_at IS NULL AND n.last_heartbeat_at <= ?
         ORDER BY n.last_heartbeat_at LIMIT ?`,
      ).run(cutoff, limit).changes,
    );
    if (reaped === 0) return 0;
    this.#run(
      `UPDATE licenses SET node_id = NULL, last_released_at = ?
       WHERE id IN (SELECT license_id FROM temp.reap_batch)`,
      now,
    );
    this.#run(
      "UPDATE nodes SET deactivated_at = ? WHERE id IN (SELECT node_id FROM temp.reap_batch)",
      now,
    );
    if (this.#audit) {
      // Per node in reap order: license.lease_expired (if it leased one), node.culled.
      this.#run(
        `INSERT INTO audit_logs (event_type_id, entity_type_id, entity_id, pool_id, created_at)
         SELECT e.event, e.entity, CASE e.entity WHEN ${EntityType.license}
           THEN b.license_id ELSE b.node_id END, b.pool_id, ?
         FROM temp.reap_batch b
         JOIN (SELECT ${EventType.licenseLeaseExpired} AS event, ${EntityType.license} AS entity
               UNION ALL SELECT ${EventType.nodeCulled}, ${EntityType.node}) e
         WHERE e.entity = ${EntityType.node} OR b.license_id IS NOT NULL
         ORDER BY b.seq, e.entity`,
        now,
      );
    }
    return reaped;
  }

  /** Deletes up to `limit` audit records created before `cutoff`; returns how many. */
  deleteAuditBefore(cutoff: number, limit: number): number {
    return Number(
      this.#statement(
        `DELETE FROM audit_logs WHERE id IN
           (SELECT id FROM audit_logs WHERE created_at < ? ORDER BY created_at LIMIT ?)`,
      ).run(cutoff, limit).changes,
    );
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #get<T>(sql: string, ...params: SQLInputValue[]): T | undefined {
    return this.#statement(sql).get(...params) as T | undefined;
  }

  #all<T>(sql: string, ...params: SQLInputValue[]): T[] {
    return this.#statement(sql).all(...params) as T[];
  }

  #run(sql: string, ...params: SQLInputValue[]): void {
    this.#statement(sql).run(...params);
  }
}

/**
 * Opens (creating if needed) the database at `path`, applies pragmas and any
 * pending migrations in one transaction, and returns the store.
 *
 * A new database file is created readable by its owner only (0600); SQLite
 * gives its WAL and SHM files the same mode.
 *
 * @throws {DatabaseError} the file cannot be created or opened, is not a
 *   SQLite database, or holds tables that are not Relay's.
 * @throws {DatabaseTooNewError} a newer Relay (or Keygen Relay) wrote it.
 */
export function openStore(path: string, options: StoreOptions): Store {
  if (path !== ":memory:") createPrivateFile(path);
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path);
  } catch (error) {
    throw new DatabaseError(`Cannot open database "${path}": ${reason(error)}`, {
      cause: error,
    });
  }
  try {
    db.exec(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
    // Refuse a file that is not ours before any pragma writes to it.
    schemaState(db, path, MIGRATIONS.length);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA foreign_keys = ON");
    // FULL: a lease acknowledged to a client survives a power loss, not only a crash.
    db.exec("PRAGMA synchronous = FULL");
    // Savepoints of a group commit journal in memory instead of temp files.
    db.exec("PRAGMA temp_store = MEMORY");
    migrate(db, path, MIGRATIONS, options.now);
    // After the migrations, so that they run under Relay's own settings.
    for (const [key, value] of Object.entries(options.pragmas ?? {})) {
      db.exec(`PRAGMA ${key} = ${value}`);
    }
  } catch (error) {
    db.close();
    if (error instanceof DatabaseError || error instanceof DatabaseTooNewError) throw error;
    throw new DatabaseError(`Cannot use database "${path}": ${reason(error)}`, {
      cause: error,
    });
  }
  return new Store(db, { audit: options.audit ?? true, path });
}

/** What one {@link WalCheckpointer.checkpoint} did, in WAL frames (pages). */
export interface CheckpointResult {
  /** Frames in the WAL. */
  walFrames: number;
  /** Frames of it now copied into the database file. */
  checkpointed: number;
}

/**
 * A second connection to a WAL-mode database that only checkpoints: it copies
 * committed pages from the WAL into the database file and fsyncs it, work that
 * SQLite otherwise does inside a commit on the writer's thread. A PASSIVE
 * checkpoint never takes the write lock, so it runs beside the writer (in
 * `relay serve`, on a worker thread; see `server/checkpointer.ts`).
 */
export class WalCheckpointer {
  readonly #db: DatabaseSync;
  readonly #statement: StatementSync;
  readonly #path: string;

  /** Opens a connection to the existing database at `path`. */
  constructor(path: string) {
    this.#path = path;
    try {
      this.#db = new DatabaseSync(path);
      this.#db.exec("PRAGMA busy_timeout = 5000");
      // Sync the database file as the writer's own checkpoints would.
      this.#db.exec("PRAGMA synchronous = FULL");
      this.#statement = this.#db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
    } catch (error) {
      throw new DatabaseError(`Cannot open database "${path}": ${reason(error)}`, {
        cause: error,
      });
    }
  }

  /** Copies as many committed WAL frames as no reader still needs. */
  checkpoint(): CheckpointResult {
    try {
      const row = this.#statement.get() as { log: number; checkpointed: number };
      return { walFrames: row.log, checkpointed: row.checkpointed };
    } catch (error) {
      throw asDatabaseError(error, this.#path);
    }
  }

  /** Closes the connection. */
  close(): void {
    this.#db.close();
  }
}

/** Creates `path` with mode 0600 unless it exists. */
function createPrivateFile(path: string): void {
  try {
    Deno.openSync(path, { createNew: true, write: true, mode: 0o600 }).close();
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return;
    if (error instanceof Deno.errors.NotFound) {
      throw new DatabaseError(
        `Cannot create database "${path}": its folder does not exist`,
        { cause: error },
      );
    }
    throw new DatabaseError(`Cannot create database "${path}": ${reason(error)}`, {
      cause: error,
    });
  }
}

/** Where a database's schema stands. */
interface SchemaState {
  /** Relay migrations applied (0 for a new file). */
  applied: number;
  /** Whether `relay_migrations` exists. */
  tracked: boolean;
  /** Whether the reference Relay's schema is present. */
  reference: boolean;
}

/**
 * Reads where the schema stands, refusing databases that Relay must not
 * touch. Only reads, so a refused file is left exactly as it was.
 */
function schemaState(db: DatabaseSync, path: string, known: number): SchemaState {
  const tables = new Set(
    db.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    ).all().map((row) => String(row.name)),
  );
  const reference = tables.has("schema_migrations") && checkReferenceSchema(db, path);
  const tracked = tables.has("relay_migrations");
  if (!tracked && !reference && tables.size > 0) {
    throw new DatabaseError(
      `Database "${path}" holds tables that are not Relay's; pass a new file or a Relay database with --database`,
    );
  }
  const applied = tracked
    ? Number(db.prepare("SELECT max(version) AS version FROM relay_migrations").get()?.version ?? 0)
    : 0;
  if (applied > known) {
    throw new DatabaseTooNewError(
      `Database "${path}" was written by a newer Relay (schema version ${applied}, this Relay knows up to ${known}); upgrade Relay to use it`,
    );
  }
  return { applied, tracked, reference };
}

/**
 * Brings the schema up to date inside one `BEGIN IMMEDIATE` transaction, so
 * two processes opening a new file at once apply each step exactly once.
 */
function migrate(
  db: DatabaseSync,
  path: string,
  migrations: readonly Migration[],
  now: number,
): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    const state = schemaState(db, path, migrations.length);
    let current = state.applied;
    const record = () =>
      db.prepare("INSERT INTO relay_migrations (version, name, applied_at) VALUES (?, ?, ?)");
    if (!state.tracked) {
      db.exec(`CREATE TABLE relay_migrations (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at INTEGER NOT NULL
      )`);
      // A database of the reference Relay already has step 1's schema.
      if (state.reference) {
        record().run(1, migrations[0].name, now);
        current = 1;
      }
    }
    for (const migration of migrations.slice(current)) {
      db.exec(migration.sql);
      record().run(migration.version, migration.name, now);
    }
    db.exec("COMMIT");
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
}

/**
 * Checks golang-migrate's record of a database written by the reference
 * Relay: only its final, clean version can be carried forward.
 */
function checkReferenceSchema(db: DatabaseSync, path: string): true {
  const row = db.prepare("SELECT version, dirty FROM schema_migrations LIMIT 1").get();
  if (!row) {
    throw new DatabaseError(
      `Database "${path}" has an empty schema_migrations table; it was not fully created by Keygen Relay`,
    );
  }
  const version = Number(row.version);
  if (Number(row.dirty) !== 0) {
    throw new DatabaseError(
      `Database "${path}" was left mid-migration by Keygen Relay (version ${version}, dirty); restore it from a backup`,
    );
  }
  if (version > REFERENCE_SCHEMA_VERSION) {
    throw new DatabaseTooNewError(
      `Database "${path}" was written by a newer Keygen Relay (schema version ${version}, this Relay knows up to ${REFERENCE_SCHEMA_VERSION}); upgrade Relay to use it`,
    );
  }
  if (version < REFERENCE_SCHEMA_VERSION) {
    throw new DatabaseError(
      `Database "${path}" was written by an older Keygen Relay (schema version ${version}); open it once with Keygen Relay 1.3 to bring it to version ${REFERENCE_SCHEMA_VERSION}, then use it here`,
    );
  }
  return true;
}

/**
 * SQLite's own failures (disk full, locked too long, corrupt, read-only) as a
 * {@link DatabaseError} that names the file; other errors pass through.
 */
function asDatabaseError(error: unknown, path: string): unknown {
  if (
    error instanceof Error && (error as Error & { code?: string }).code === "ERR_SQLITE_ERROR"
  ) {
    return new DatabaseError(`Database "${path}" failed: ${error.message}`, { cause: error });
  }
  return error;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
