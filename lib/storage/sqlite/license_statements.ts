/**
 * The statements of `SqliteTx` (`./statements.ts`) about license rows: add,
 * find, list, renew and delete licenses, with the seat rows of multi-seat
 * licenses (migration 11), and what a holder of a row receives.
 *
 * @module
 */

// node:sqlite is synchronous: the methods are async only to fit the engine-neutral Tx.
// deno-lint-ignore-file require-await

import type { SQLInputValue } from "node:sqlite";
import type {
  LicenseFileRow,
  LicenseGrant,
  LicenseInfo,
  NewLicenseRow,
  RenewableLicense,
} from "../store.ts";
import { AuditQueries } from "./audit_queries.ts";
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
export const GRANT_OF_ROW = `
  SELECT m.id AS licenseId, m.file AS file, m.key AS key, m.guid AS guid,
         m.file_expires_at AS fileExpiresAt
  FROM licenses l JOIN licenses m ON m.id = IFNULL(l.seat_of, l.id)
  WHERE l.id = ?`;

/** The license-row statements of `SqliteTx`. */
export class LicenseStatements extends AuditQueries {
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
      `UPDATE licenses SET file = ?, file_issued_at = ?, file_expires_at = ?, expires_at = ?,
         max_machines = ?, max_users = ?
       WHERE id = ?`,
      row.file,
      row.fileIssuedAt,
      row.fileExpiresAt,
      row.expiresAt,
      row.maxMachines ?? null,
      row.maxUsers ?? null,
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

  async licenseGrant(licenseId: number): Promise<LicenseGrant | undefined> {
    return this.sql.get<LicenseGrant>(GRANT_OF_ROW, licenseId);
  }
}
