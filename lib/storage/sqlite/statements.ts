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

import type { DatabaseSync, SQLInputValue } from "node:sqlite";
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
import { FreeLicenseStatements } from "./free_licenses.ts";
import { PreparedStatements } from "./prepared.ts";
import { VALID_UNTIL } from "./schema.ts";

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
export class SqliteTx extends FreeLicenseStatements implements Tx {
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

  async poolByName(name: string): Promise<Pool | undefined> {
    return this.sql.get<Pool>(
      "SELECT id, name, created_at AS createdAt FROM pools WHERE name = ?",
      name,
    );
  }

  async pools(): Promise<Pool[]> {
    return this.sql.all<Pool>("SELECT id, name, created_at AS createdAt FROM pools ORDER BY name");
  }

  async insertPool(name: string, now: number): Promise<Pool> {
    return this.sql.get<Pool>(
      `INSERT INTO pools (name, created_at) VALUES (?, ?)
       RETURNING id, name, created_at AS createdAt`,
      name,
      now,
    )!;
  }

  async conflictingLicense(
    license: { guid: string; key: string; file: Uint8Array },
  ): Promise<string | undefined> {
    return this.sql.get<{ guid: string }>(
      "SELECT guid FROM licenses WHERE guid = ? OR key = ? OR file = ? LIMIT 1",
      license.guid,
      license.key,
      license.file,
    )?.guid;
  }

  async insertLicense(row: NewLicenseRow, now: number): Promise<number> {
    return this.sql.get<{ id: number }>(
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
    return this.sql.get<LicenseInfo>(`${LICENSE_INFO_SELECT} WHERE l.guid = ?`, guid);
  }

  async licenses(
    filter: { poolId?: number; expiringBy?: number } = {},
  ): Promise<LicenseInfo[]> {
    const conditions: string[] = [];
    const params: SQLInputValue[] = [];
    if (filter.poolId !== undefined) {
      conditions.push("l.pool_id = ?");
      params.push(filter.poolId);
    }
    if (filter.expiringBy !== undefined) {
      conditions.push(`${VALID_UNTIL} <= ?`);
      params.push(filter.expiringBy);
    }
    const where = conditions.length === 0 ? "" : ` WHERE ${conditions.join(" AND ")}`;
    return this.sql.all<LicenseInfo>(`${LICENSE_INFO_SELECT}${where} ORDER BY l.id`, ...params);
  }

  async deleteLicense(id: number): Promise<void> {
    this.sql.run("DELETE FROM licenses WHERE id = ?", id);
  }

  async activeNode(fingerprint: string): Promise<ActiveNode | undefined> {
    return this.sql.get<ActiveNode>(
      `SELECT id, last_heartbeat_at AS lastHeartbeatAt, lease_expires_at AS leaseExpiresAt
       FROM nodes WHERE fingerprint = ? AND deactivated_at IS NULL`,
      fingerprint,
    );
  }

  async activateNode(fingerprint: string, { now, expiresAt }: LeaseTimes): Promise<number> {
    return this.sql.get<{ id: number }>(
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
      `SELECT id, guid, pool_id AS poolId, file_expires_at AS fileExpiresAt,
         expires_at AS expiresAt
       FROM licenses WHERE node_id = ?`,
      nodeId,
    );
  }

  async leaseLicense(
    licenseId: number,
    { nodeId, now }: { nodeId: number; now: number },
  ): Promise<LicenseGrant | undefined> {
    return this.sql.get<LicenseGrant>(
      `UPDATE licenses SET node_id = ?, last_claimed_at = ?, claims = claims + 1
       WHERE id = ? AND node_id IS NULL
       RETURNING guid, file, key`,
      nodeId,
      now,
      licenseId,
    );
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
      seq INTEGER PRIMARY KEY, node_id INTEGER NOT NULL, license_id INTEGER, pool_id INTEGER)`);
    this.sql.run("DELETE FROM temp.reap_batch");
    // The index is named: without statistics SQLite picks idx_nodes_activated
    // and sorts every active node for each batch. NULLs sort first in it.
    let reaped = cutoff === null ? 0 : this.sql.changes(
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
      reaped += this.sql.changes(
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
      // Per node in reap order: license.lease_expired (if it leased one), node.culled.
      this.sql.run(
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
