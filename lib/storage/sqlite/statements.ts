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
  HolderTimes,
  LeasedLicense,
  LeaseTimes,
  LicenseFileRow,
  LicenseGrant,
  LicenseInfo,
  NewLicenseRow,
  Pool,
  RenewableLicense,
  Tx,
} from "../store.ts";
import { AuditQueries } from "./audit_queries.ts";
import { PreparedStatements } from "./prepared.ts";
import { VALID_UNTIL } from "./schema.ts";

/** The columns of `LicenseInfo` of row `l`, its own lease and seat counts aside. */
const LICENSE_INFO_COLUMNS = `
  l.id AS id, l.guid AS guid, l.pool_id AS poolId, p.name AS poolName,
  l.node_id AS nodeId, n.fingerprint AS nodeFingerprint,
  n.last_heartbeat_at AS nodeLastHeartbeatAt, n.lease_expires_at AS leaseExpiresAt,
  l.last_claimed_at AS lastClaimedAt,
  l.last_released_at AS lastReleasedAt, l.created_at AS createdAt,
  l.file_issued_at AS fileIssuedAt, l.file_expires_at AS fileExpiresAt,
  l.expires_at AS expiresAt`;

const LICENSE_JOINS = `
  LEFT JOIN pools p ON p.id = l.pool_id
  LEFT JOIN nodes n ON n.id = l.node_id`;

/**
 * Licenses as `ls` and `stat` show them: one entry per license, its seat
 * rows counted in (claims summed). The subqueries find no seat rows for a
 * single-seat license (idx_licenses_seat_of).
 */
const LICENSE_INFO_SELECT = `
  SELECT ${LICENSE_INFO_COLUMNS},
         l.claims + IFNULL((SELECT sum(s.claims) FROM licenses s WHERE s.seat_of = l.id), 0)
           AS claims,
         1 + (SELECT count(*) FROM licenses s WHERE s.seat_of = l.id) AS seats,
         (l.node_id IS NOT NULL)
           + (SELECT count(*) FROM licenses s WHERE s.seat_of = l.id AND s.node_id IS NOT NULL)
           AS seatsUsed
  FROM licenses l ${LICENSE_JOINS}`;

/** Every row of a license (`?1`: its id), each with its own lease, the license's row first. */
const LICENSE_SEATS_SELECT = `
  SELECT ${LICENSE_INFO_COLUMNS}, l.claims AS claims, 1 AS seats,
         (l.node_id IS NOT NULL) AS seatsUsed
  FROM licenses l ${LICENSE_JOINS}
  WHERE l.id = ?1 OR l.seat_of = ?1
  ORDER BY l.seat_of IS NOT NULL, l.id`;

/** The license (`m`, the main row) and grant of the row `id = ?`. */
const GRANT_OF_ROW = `
  SELECT m.id AS licenseId, m.file AS file, m.key AS key, m.guid AS guid,
         m.file_expires_at AS fileExpiresAt
  FROM licenses l JOIN licenses m ON m.id = IFNULL(l.seat_of, l.id)
  WHERE l.id = ?`;

const INSERT_AUDIT =
  `INSERT INTO audit_logs (event_type_id, entity_type_id, entity_id, pool_id, created_at)
   VALUES (?, ?, ?, ?, ?)`;

/**
 * The statements of a SQLite connection. One instance serves every
 * transaction of its connection; the store hands it out only inside one.
 */
export class SqliteTx extends AuditQueries implements Tx {
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

  async renewableLicense(guid: string): Promise<RenewableLicense | undefined> {
    return this.sql.get<RenewableLicense>(
      `SELECT id, key, pool_id AS poolId, file_issued_at AS fileIssuedAt
       FROM licenses WHERE guid = ?`,
      guid,
    );
  }

  async renewLicense(id: number, row: LicenseFileRow): Promise<void> {
    this.sql.run(
      `UPDATE licenses SET file = ?, file_issued_at = ?, file_expires_at = ?, expires_at = ?
       WHERE id = ?`,
      row.file,
      row.fileIssuedAt,
      row.fileExpiresAt,
      row.expiresAt,
      id,
    );
    this.sql.run(
      `UPDATE licenses SET file_issued_at = ?, file_expires_at = ?, expires_at = ?
       WHERE seat_of = ?`,
      row.fileIssuedAt,
      row.fileExpiresAt,
      row.expiresAt,
      id,
    );
  }

  async insertLicense(row: NewLicenseRow, now: number): Promise<number> {
    return this.sql.get<{ id: number }>(
      `INSERT INTO licenses
         (guid, file, key, pool_id, created_at, file_issued_at, file_expires_at, expires_at,
          max_machines, max_users)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
      row.guid,
      row.file,
      row.key,
      row.poolId,
      now,
      row.fileIssuedAt,
      row.fileExpiresAt,
      row.expiresAt,
      row.maxMachines ?? null,
      row.maxUsers ?? null,
    )!.id;
  }

  /**
   * Seat n's fillers: guid and key of the license with `#seat-n` appended,
   * and as file the text `seat n of license <guid>`, never a certificate.
   */
  async insertSeats(licenseId: number, count: number, now: number): Promise<void> {
    this.sql.run(
      `WITH RECURSIVE seat (n) AS (SELECT 2 UNION ALL SELECT n + 1 FROM seat WHERE n <= ?2)
       INSERT INTO licenses
         (guid, file, key, pool_id, created_at, file_issued_at, file_expires_at, expires_at,
          seat_of)
       SELECT l.guid || '#seat-' || seat.n, CAST('seat ' || seat.n || ' of license ' || l.guid AS BLOB),
         l.key || '#seat-' || seat.n, l.pool_id, ?3, l.file_issued_at, l.file_expires_at,
         l.expires_at, l.id
       FROM licenses l, seat WHERE l.id = ?1 ORDER BY seat.n`,
      licenseId,
      count,
      now,
    );
  }

  async licenseByGuid(guid: string): Promise<LicenseInfo | undefined> {
    return this.sql.get<LicenseInfo>(
      `${LICENSE_INFO_SELECT} WHERE l.guid = ? AND l.seat_of IS NULL`,
      guid,
    );
  }

  async licenseSeats(licenseId: number): Promise<LicenseInfo[]> {
    return this.sql.all<LicenseInfo>(LICENSE_SEATS_SELECT, licenseId);
  }

  async licenses(
    filter: { poolId?: number; expiringBy?: number } = {},
  ): Promise<LicenseInfo[]> {
    const conditions: string[] = ["l.seat_of IS NULL"];
    const params: SQLInputValue[] = [];
    if (filter.poolId !== undefined) {
      conditions.push("l.pool_id = ?");
      params.push(filter.poolId);
    }
    if (filter.expiringBy !== undefined) {
      conditions.push(`${VALID_UNTIL} <= ?`);
      params.push(filter.expiringBy);
    }
    const where = ` WHERE ${conditions.join(" AND ")}`;
    return this.sql.all<LicenseInfo>(`${LICENSE_INFO_SELECT}${where} ORDER BY l.id`, ...params);
  }

  /** The seat rows go first, explicitly: the free-license triggers count each. */
  async deleteLicense(id: number): Promise<void> {
    this.sql.run("DELETE FROM licenses WHERE seat_of = ?", id);
    this.sql.run("DELETE FROM licenses WHERE id = ?", id);
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

  async licenseGrant(licenseId: number): Promise<LicenseGrant | undefined> {
    return this.sql.get<LicenseGrant>(GRANT_OF_ROW, licenseId);
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
