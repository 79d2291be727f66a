/**
 * Every SQL statement Relay runs on SQLite, as the methods of a {@link Tx}.
 * Each is prepared once per connection, on first use.
 *
 * `pool_id IS ?` matches NULL too, so one statement serves licenses with and
 * without a pool.
 *
 * @module
 */

// node:sqlite is synchronous: the methods are async only to fit the engine-neutral Tx.
// deno-lint-ignore-file require-await

import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import { EntityType, EventType } from "../../audit.ts";
import type {
  ActiveNode,
  AuditEntry,
  LeasedLicense,
  LeaseTimes,
  LicenseGrant,
  LicenseInfo,
  NewLicenseRow,
  Pool,
  Tx,
} from "../store.ts";
import { FREE_COUNT_SHIFTS } from "./schema.ts";

const LICENSE_INFO_SELECT = `
  SELECT l.id AS id, l.guid AS guid, l.pool_id AS poolId, p.name AS poolName,
         l.claims AS claims, l.node_id AS nodeId, n.fingerprint AS nodeFingerprint,
         n.last_heartbeat_at AS nodeLastHeartbeatAt, n.lease_expires_at AS leaseExpiresAt,
         l.last_claimed_at AS lastClaimedAt,
         l.last_released_at AS lastReleasedAt, l.created_at AS createdAt,
         l.file_issued_at AS fileIssuedAt, l.file_expires_at AS fileExpiresAt,
         l.expires_at AS expiresAt
  FROM licenses l
  LEFT JOIN pools p ON p.id = l.pool_id
  LEFT JOIN nodes n ON n.id = l.node_id`;

const INSERT_AUDIT =
  `INSERT INTO audit_logs (event_type_id, entity_type_id, entity_id, pool_id, created_at)
   VALUES (?, ?, ?, ?, ?)`;

/**
 * The statements of a SQLite connection. One instance serves every
 * transaction of its connection; the store hands it out only inside one.
 */
export class SqliteTx implements Tx {
  readonly #db: DatabaseSync;
  readonly #audit: boolean;
  readonly #statements = new Map<string, StatementSync>();

  /** Statements of `db`; `audit: false` makes {@link audit} a no-op. */
  constructor(db: DatabaseSync, options: { audit: boolean }) {
    this.#db = db;
    this.#audit = options.audit;
  }

  async audit(entry: AuditEntry): Promise<void> {
    if (!this.#audit) return;
    const { event, entity, entityId, poolId, now } = entry;
    this.#run(INSERT_AUDIT, event, entity, entityId, poolId, now);
  }

  async poolByName(name: string): Promise<Pool | undefined> {
    return this.#get<Pool>(
      "SELECT id, name, created_at AS createdAt FROM pools WHERE name = ?",
      name,
    );
  }

  async insertPool(name: string, now: number): Promise<Pool> {
    return this.#get<Pool>(
      `INSERT INTO pools (name, created_at) VALUES (?, ?)
       RETURNING id, name, created_at AS createdAt`,
      name,
      now,
    )!;
  }

  async conflictingLicense(
    license: { guid: string; key: string; file: Uint8Array },
  ): Promise<string | undefined> {
    return this.#get<{ guid: string }>(
      "SELECT guid FROM licenses WHERE guid = ? OR key = ? OR file = ? LIMIT 1",
      license.guid,
      license.key,
      license.file,
    )?.guid;
  }

  async insertLicense(row: NewLicenseRow, now: number): Promise<number> {
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

  async licenseByGuid(guid: string): Promise<LicenseInfo | undefined> {
    return this.#get<LicenseInfo>(`${LICENSE_INFO_SELECT} WHERE l.guid = ?`, guid);
  }

  async licenses(filter: { poolId?: number } = {}): Promise<LicenseInfo[]> {
    if (filter.poolId === undefined) {
      return this.#all<LicenseInfo>(`${LICENSE_INFO_SELECT} ORDER BY l.id`);
    }
    return this.#all<LicenseInfo>(
      `${LICENSE_INFO_SELECT} WHERE l.pool_id = ? ORDER BY l.id`,
      filter.poolId,
    );
  }

  async deleteLicense(id: number): Promise<void> {
    this.#run("DELETE FROM licenses WHERE id = ?", id);
  }

  async activeNode(fingerprint: string): Promise<ActiveNode | undefined> {
    return this.#get<ActiveNode>(
      `SELECT id, last_heartbeat_at AS lastHeartbeatAt, lease_expires_at AS leaseExpiresAt
       FROM nodes WHERE fingerprint = ? AND deactivated_at IS NULL`,
      fingerprint,
    );
  }

  async activateNode(fingerprint: string, { now, expiresAt }: LeaseTimes): Promise<number> {
    return this.#get<{ id: number }>(
      `INSERT INTO nodes (fingerprint, last_heartbeat_at, lease_expires_at, created_at)
       VALUES (?1, ?2, ?3, ?2)
       ON CONFLICT (fingerprint) DO UPDATE
         SET deactivated_at = NULL, last_heartbeat_at = excluded.last_heartbeat_at,
           lease_expires_at = excluded.lease_expires_at
       RETURNING id`,
      fingerprint,
      now,
      expiresAt,
    )!.id;
  }

  async heartbeat(nodeId: number, { now, expiresAt }: LeaseTimes): Promise<void> {
    this.#run(
      "UPDATE nodes SET last_heartbeat_at = ?, lease_expires_at = ? WHERE id = ?",
      now,
      expiresAt,
      nodeId,
    );
  }

  async deactivateNode(nodeId: number, now: number): Promise<void> {
    this.#run("UPDATE nodes SET deactivated_at = ? WHERE id = ?", now, nodeId);
  }

  async licenseLeasedBy(nodeId: number): Promise<LeasedLicense | undefined> {
    return this.#get<LeasedLicense>(
      "SELECT id, pool_id AS poolId FROM licenses WHERE node_id = ?",
      nodeId,
    );
  }

  async firstFreeLicense(
    poolId: number | null,
    order: "first" | "last",
  ): Promise<number | undefined> {
    return this.#get<{ id: number }>(
      order === "first"
        ? "SELECT id FROM licenses WHERE pool_id IS ? AND node_id IS NULL ORDER BY id LIMIT 1"
        : "SELECT id FROM licenses WHERE pool_id IS ? AND node_id IS NULL ORDER BY id DESC LIMIT 1",
      poolId,
    )?.id;
  }

  async freeLicenseCount(poolId: number | null): Promise<number> {
    return this.#get<{ n: number }>(
      "SELECT IFNULL(sum(free), 0) AS n FROM free_counts WHERE pool_key = IFNULL(?, 0) AND level = ?",
      poolId,
      FREE_COUNT_SHIFTS.length,
    )!.n;
  }

  /** From the first and last level-1 counters of `free_counts`. */
  async freeLicenseIdRange(
    poolId: number | null,
  ): Promise<{ low: number; high: number } | undefined> {
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

  async isFreeLicense(poolId: number | null, id: number): Promise<boolean> {
    return this.#get(
      "SELECT 1 AS free FROM licenses WHERE pool_id IS ? AND node_id IS NULL AND id = ?",
      poolId,
      id,
    ) !== undefined;
  }

  /**
   * From the top level of `free_counts` down, the bucket where the running
   * count passes `index`, then the remaining offset among at most 64 ids.
   */
  async freeLicenseAt(poolId: number | null, index: number): Promise<number | undefined> {
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

  async leaseLicense(
    licenseId: number,
    { nodeId, now }: { nodeId: number; now: number },
  ): Promise<LicenseGrant | undefined> {
    return this.#get<LicenseGrant>(
      `UPDATE licenses SET node_id = ?, last_claimed_at = ?, claims = claims + 1
       WHERE id = ? AND node_id IS NULL
       RETURNING file, key`,
      nodeId,
      now,
      licenseId,
    );
  }

  async releaseLicense(licenseId: number, now: number): Promise<void> {
    this.#run(
      "UPDATE licenses SET node_id = NULL, last_released_at = ? WHERE id = ?",
      now,
      licenseId,
    );
  }

  /** Set-based: a few statements per batch, through a temporary table. */
  /** Leases without a stored expiry first, then by stored expiry; each oldest first. */
  async reapExpired(
    { now, cutoff, limit }: { now: number; cutoff: number | null; limit: number },
  ): Promise<number> {
    this.#db.exec(`CREATE TEMP TABLE IF NOT EXISTS reap_batch (
      seq INTEGER PRIMARY KEY, node_id INTEGER NOT NULL, license_id INTEGER, pool_id INTEGER)`);
    this.#run("DELETE FROM temp.reap_batch");
    // The index is named: without statistics SQLite picks idx_nodes_activated
    // and sorts every active node for each batch. NULLs sort first in it.
    let reaped = cutoff === null ? 0 : this.#changes(
      `INSERT INTO temp.reap_batch (node_id, license_id, pool_id)
       SELECT n.id, l.id, l.pool_id
       FROM nodes n INDEXED BY idx_nodes_active_expiry
       LEFT JOIN licenses l ON l.node_id = n.id
       WHERE n.deactivated_at IS NULL AND n.lease_expires_at IS NULL
         AND n.last_heartbeat_at <= ?
       ORDER BY n.lease_expires_at, n.last_heartbeat_at LIMIT ?`,
      cutoff,
      limit,
    );
    if (reaped < limit) {
      reaped += this.#changes(
        `INSERT INTO temp.reap_batch (node_id, license_id, pool_id)
         SELECT n.id, l.id, l.pool_id
         FROM nodes n INDEXED BY idx_nodes_active_expiry
         LEFT JOIN licenses l ON l.node_id = n.id
         WHERE n.deactivated_at IS NULL AND n.lease_expires_at <= ?
         ORDER BY n.lease_expires_at LIMIT ?`,
        now,
        limit - reaped,
      );
    }
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

  async deleteAuditBefore(cutoff: number, limit: number): Promise<number> {
    return this.#changes(
      `DELETE FROM audit_logs WHERE id IN
         (SELECT id FROM audit_logs WHERE created_at < ? ORDER BY created_at LIMIT ?)`,
      cutoff,
      limit,
    );
  }

  /** Forgets the prepared statements, before the connection closes. */
  finalize(): void {
    this.#statements.clear();
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

  #changes(sql: string, ...params: SQLInputValue[]): number {
    return Number(this.#statement(sql).run(...params).changes);
  }
}
