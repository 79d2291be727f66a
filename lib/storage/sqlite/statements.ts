/**
 * Every SQL statement Relay runs on SQLite, as the methods of a {@link Tx}
 * (those about license rows in `./license_statements.ts`, the read queries
 * in the modules it extends). Each is prepared once per connection, on first use.
 *
 * `pool_id IS ?` matches NULL too, so one statement serves licenses with and
 * without a pool.
 *
 * @module
 */

// node:sqlite is synchronous: the methods are async only to fit the engine-neutral Tx.
// deno-lint-ignore-file require-await

import type { DatabaseSync } from "node:sqlite";
import { EntityType, EventType } from "../../audit.ts";
import type {
  ActiveNode,
  AuditEntry,
  HolderTimes,
  LeasedLicense,
  LeaseTimes,
  LicenseGrant,
  Pool,
  Tx,
} from "../store.ts";
import { GRANT_OF_ROW, LicenseStatements } from "./license_statements.ts";
import { PreparedStatements } from "./prepared.ts";

const INSERT_AUDIT =
  `INSERT INTO audit_logs (event_type_id, entity_type_id, entity_id, pool_id, created_at)
   VALUES (?, ?, ?, ?, ?)`;

/**
 * The statements of a SQLite connection. One instance serves every
 * transaction of its connection; the store hands it out only inside one.
 */
export class SqliteTx extends LicenseStatements implements Tx {
  readonly #audit: boolean;

  /** Statements of `db`; `audit: false` makes {@link audit} a no-op. */
  constructor(db: DatabaseSync, options: { audit: boolean }) {
    super(new PreparedStatements(db));
    this.#audit = options.audit;
  }

  async audit(entry: AuditEntry): Promise<void> {
    if (!this.#audit) return;
    const { event, entity, entityId, poolId, now } = entry;
    this.sql.run(INSERT_AUDIT, event, entity, entityId, poolId, now);
  }

  /** A no-op: the transactions of a SQLite database already run one at a time. */
  async lockHolder(_key: string): Promise<void> {}

  /** Always: the transactions of a SQLite database already run one at a time. */
  async tryReaperLock(): Promise<boolean> {
    return true;
  }

  async poolByName(name: string): Promise<Pool | undefined> {
    return this.sql.get<Pool>(
      "SELECT id, name, created_at AS createdAt FROM pools WHERE name = ?",
      name,
    );
  }

  async insertPool(name: string, now: number): Promise<Pool> {
    return this.sql.get<Pool>(
      `INSERT INTO pools (name, created_at) VALUES (?, ?)
       RETURNING id, name, created_at AS createdAt`,
      name,
      now,
    )!;
  }

  async activeNode(fingerprint: string): Promise<ActiveNode | undefined> {
    return this.sql.get<ActiveNode>(
      `SELECT id, last_heartbeat_at AS lastHeartbeatAt, lease_expires_at AS leaseExpiresAt
       FROM nodes WHERE fingerprint = ? AND deactivated_at IS NULL`,
      fingerprint,
    );
  }

  /** The upsert changes nothing for a key stored with another holder type. */
  async activateHolder(
    key: string,
    { now, expiresAt, holderType }: HolderTimes,
  ): Promise<number | undefined> {
    return this.sql.get<{ id: number }>(
      `INSERT INTO nodes (fingerprint, last_heartbeat_at, lease_expires_at, created_at, holder_type)
       VALUES (?1, ?2, ?3, ?2, ?4)
       ON CONFLICT (fingerprint) DO UPDATE
         SET deactivated_at = NULL, last_heartbeat_at = excluded.last_heartbeat_at,
           lease_expires_at = excluded.lease_expires_at
         WHERE nodes.holder_type = excluded.holder_type
       RETURNING id`,
      key,
      now,
      expiresAt,
      holderType,
    )?.id;
  }

  async heartbeat(nodeId: number, { now, expiresAt }: LeaseTimes): Promise<void> {
    this.sql.run(
      "UPDATE nodes SET last_heartbeat_at = ?, lease_expires_at = ? WHERE id = ?",
      now,
      expiresAt,
      nodeId,
    );
  }

  async deactivateNode(nodeId: number, now: number): Promise<void> {
    this.sql.run("UPDATE nodes SET deactivated_at = ? WHERE id = ?", now, nodeId);
  }

  async licenseLeasedBy(nodeId: number): Promise<LeasedLicense | undefined> {
    return this.sql.get<LeasedLicense>(
      `SELECT l.id AS id, IFNULL(l.seat_of, l.id) AS licenseId, IFNULL(m.guid, l.guid) AS guid,
              l.pool_id AS poolId, l.file_expires_at AS fileExpiresAt, l.expires_at AS expiresAt
       FROM licenses l LEFT JOIN licenses m ON m.id = l.seat_of
       WHERE l.node_id = ?`,
      nodeId,
    );
  }

  async leaseLicense(
    licenseId: number,
    { nodeId, now }: { nodeId: number; now: number },
  ): Promise<LicenseGrant | undefined> {
    const leased = this.sql.get<LicenseGrant & { seatOf: number | null }>(
      `UPDATE licenses SET node_id = ?, last_claimed_at = ?, claims = claims + 1
       WHERE id = ? AND node_id IS NULL
       RETURNING id AS licenseId, file, key, guid, file_expires_at AS fileExpiresAt,
         seat_of AS seatOf`,
      nodeId,
      now,
      licenseId,
    );
    if (leased === undefined) return undefined;
    // A seat row: its holder gets the license's file, key and id.
    if (leased.seatOf !== null) return this.sql.get<LicenseGrant>(GRANT_OF_ROW, licenseId);
    const { seatOf: _, ...grant } = leased;
    return grant;
  }

  /**
   * Two walks of idx_nodes_active_expiry in expiry order, each stopping at the
   * pool's first lease: a step per lease, from the earliest, until one is the
   * pool's (forced: sorting the pool's leases would cost one step per lease of
   * the pool on every 410).
   */
  async nextLeaseExpiry(poolId: number | null, ttl: number | null): Promise<number | undefined> {
    const stored = this.sql.get<{ at: number }>(
      `SELECT n.lease_expires_at AS at
       FROM nodes n INDEXED BY idx_nodes_active_expiry JOIN licenses l ON l.node_id = n.id
       WHERE n.deactivated_at IS NULL AND n.lease_expires_at IS NOT NULL AND l.pool_id IS ?
       ORDER BY n.lease_expires_at LIMIT 1`,
      poolId,
    )?.at;
    const legacy = ttl === null ? undefined : this.sql.get<{ at: number }>(
      `SELECT n.last_heartbeat_at + ? AS at
       FROM nodes n INDEXED BY idx_nodes_active_expiry JOIN licenses l ON l.node_id = n.id
       WHERE n.deactivated_at IS NULL AND n.lease_expires_at IS NULL
         AND n.last_heartbeat_at IS NOT NULL AND l.pool_id IS ?
       ORDER BY n.last_heartbeat_at LIMIT 1`,
      ttl,
      poolId,
    )?.at;
    if (stored === undefined) return legacy;
    return legacy === undefined ? stored : Math.min(stored, legacy);
  }

  async releaseLicense(licenseId: number, now: number): Promise<void> {
    this.sql.run(
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
    this.sql.exec(`CREATE TEMP TABLE IF NOT EXISTS reap_batch (
      seq INTEGER PRIMARY KEY, node_id INTEGER NOT NULL, license_id INTEGER, pool_id INTEGER,
      holder_type INTEGER, audit_license_id INTEGER)`);
    this.sql.run("DELETE FROM temp.reap_batch");
    // The index is named: without statistics SQLite picks idx_nodes_activated
    // and sorts every active node for each batch. NULLs sort first in it.
    let reaped = cutoff === null ? 0 : this.sql.changes(
      `INSERT INTO temp.reap_batch (node_id, license_id, pool_id, holder_type, audit_license_id)
       SELECT n.id, l.id, l.pool_id, n.holder_type, IFNULL(l.seat_of, l.id)
       FROM nodes n INDEXED BY idx_nodes_active_expiry
       LEFT JOIN licenses l ON l.node_id = n.id
       WHERE n.deactivated_at IS NULL AND n.lease_expires_at IS NULL
         AND n.last_heartbeat_at <= ?
       ORDER BY n.lease_expires_at, n.last_heartbeat_at LIMIT ?`,
      cutoff,
      limit,
    );
    if (reaped < limit) {
      reaped += this.sql.changes(
        `INSERT INTO temp.reap_batch (node_id, license_id, pool_id, holder_type, audit_license_id)
         SELECT n.id, l.id, l.pool_id, n.holder_type, IFNULL(l.seat_of, l.id)
         FROM nodes n INDEXED BY idx_nodes_active_expiry
         LEFT JOIN licenses l ON l.node_id = n.id
         WHERE n.deactivated_at IS NULL AND n.lease_expires_at <= ?
         ORDER BY n.lease_expires_at LIMIT ?`,
        now,
        limit - reaped,
      );
    }
    if (reaped === 0) return 0;
    this.sql.run(
      `UPDATE licenses SET node_id = NULL, last_released_at = ?
       WHERE id IN (SELECT license_id FROM temp.reap_batch)`,
      now,
    );
    this.sql.run(
      "UPDATE nodes SET deactivated_at = ? WHERE id IN (SELECT node_id FROM temp.reap_batch)",
      now,
    );
    if (this.#audit) {
      // Per holder in reap order: license.lease_expired (if it leased one;
      // the entity is the license, the main row for a seat),
      // then node.culled for a node, user.culled for a user (lib/holders.ts).
      this.sql.run(
        `INSERT INTO audit_logs (event_type_id, entity_type_id, entity_id, pool_id, created_at)
         SELECT CASE WHEN e.entity = ${EntityType.license} THEN e.event
                  WHEN b.holder_type = ${EntityType.user} THEN ${EventType.userCulled}
                  ELSE ${EventType.nodeCulled} END,
           CASE WHEN e.entity = ${EntityType.license} THEN e.entity
             WHEN b.holder_type = ${EntityType.user} THEN ${EntityType.user}
             ELSE ${EntityType.node} END,
           CASE e.entity WHEN ${EntityType.license} THEN b.audit_license_id ELSE b.node_id END,
           b.pool_id, ?
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
    return this.sql.changes(
      `DELETE FROM audit_logs WHERE id IN
         (SELECT id FROM audit_logs WHERE created_at < ? ORDER BY created_at LIMIT ?)`,
      cutoff,
      limit,
    );
  }

  async recordProbe(now: number): Promise<void> {
    this.sql.run(
      `INSERT INTO relay_health (id, probes, probed_at) VALUES (1, 1, ?)
       ON CONFLICT (id) DO UPDATE SET probes = probes + 1, probed_at = excluded.probed_at`,
      now,
    );
  }

  /** Forgets the prepared statements, before the connection closes. */
  finalize(): void {
    this.sql.clear();
  }
}
