/**
 * The statements of `PgTx` (`./statements.ts`) about license rows: add,
 * find, list, renew and delete licenses, with the seat rows of multi-seat
 * licenses. The PostgreSQL port of `../sqlite/license_statements.ts`: the
 * same rows give the same results, in the same order.
 *
 * Each function takes the transaction's connection first, then the
 * parameters of the `Tx` method of its name.
 *
 * @module
 */

import type { LicenseFileRow, LicenseInfo, NewLicenseRow, RenewableLicense } from "../store.ts";
import type { TxSql } from "./connect.ts";
import { VALID_UNTIL } from "./schema.ts";

/** Statements are prepared once per connection, by their text. */
const PREPARED = { prepare: true } as const;

/** The columns of `LicenseInfo` of row `l`, its own lease and seat counts aside. */
const LICENSE_INFO_COLUMNS = `
  l.id AS "id", l.guid AS "guid", l.pool_id AS "poolId", p.name AS "poolName",
  l.node_id AS "nodeId", n.fingerprint AS "nodeFingerprint",
  n.last_heartbeat_at AS "nodeLastHeartbeatAt", n.lease_expires_at AS "leaseExpiresAt",
  l.last_claimed_at AS "lastClaimedAt",
  l.last_released_at AS "lastReleasedAt", l.created_at AS "createdAt",
  l.file_issued_at AS "fileIssuedAt", l.file_expires_at AS "fileExpiresAt",
  l.expires_at AS "expiresAt"`;

const LICENSE_JOINS = `
  LEFT JOIN pools p ON p.id = l.pool_id
  LEFT JOIN nodes n ON n.id = l.node_id`;

/**
 * Licenses as `ls` and `stat` show them: one entry per license, its seat
 * rows counted in (claims summed). The subqueries find no seat rows for a
 * single-seat license (by the index on `seat_of`). `sum` of BIGINT is
 * NUMERIC, read as a string: cast back.
 */
const LICENSE_INFO_SELECT = `
  SELECT ${LICENSE_INFO_COLUMNS},
         (l.claims + COALESCE((SELECT sum(s.claims) FROM licenses s WHERE s.seat_of = l.id), 0))
           ::bigint AS "claims",
         1 + (SELECT count(*) FROM licenses s WHERE s.seat_of = l.id) AS "seats",
         (l.node_id IS NOT NULL)::int
           + (SELECT count(*) FROM licenses s WHERE s.seat_of = l.id AND s.node_id IS NOT NULL)
           AS "seatsUsed"
  FROM licenses l ${LICENSE_JOINS}`;

/** Every row of a license (`$1`: its id), each with its own lease, the license's row first. */
const LICENSE_SEATS_SELECT = `
  SELECT ${LICENSE_INFO_COLUMNS}, l.claims::bigint AS "claims", 1 AS "seats",
         (l.node_id IS NOT NULL)::int AS "seatsUsed"
  FROM licenses l ${LICENSE_JOINS}
  WHERE l.id = $1 OR l.seat_of = $1
  ORDER BY l.seat_of IS NOT NULL, l.id`;

/**
 * The guid of a stored license that has this guid, key or file, if any. The
 * file is compared by its digest, which idx_licenses_file indexes.
 */
export async function conflictingLicense(
  sql: TxSql,
  license: { guid: string; key: string; file: Uint8Array },
): Promise<string | undefined> {
  const [row] = await sql.unsafe<{ guid: string }[]>(
    `SELECT guid FROM licenses
     WHERE guid = $1 OR key = $2 OR sha256(file) = sha256($3::bytea) LIMIT 1`,
    [license.guid, license.key, license.file],
    PREPARED,
  );
  return row?.guid;
}

/** What a renewal of license `guid` compares against; undefined: unknown id. */
export async function renewableLicense(
  sql: TxSql,
  guid: string,
): Promise<RenewableLicense | undefined> {
  const [row] = await sql.unsafe<RenewableLicense[]>(
    `SELECT id, key, pool_id AS "poolId", file_issued_at AS "fileIssuedAt"
     FROM licenses WHERE guid = $1`,
    [guid],
    PREPARED,
  );
  return row;
}

/**
 * Replaces a license's file and its dates in place, and its seat rows'
 * dates; its rows, pool and leases stay.
 */
export async function renewLicense(sql: TxSql, id: number, row: LicenseFileRow): Promise<void> {
  await sql.unsafe(
    `UPDATE licenses SET file = $1, file_issued_at = $2, file_expires_at = $3, expires_at = $4,
       max_machines = $5, max_users = $6
     WHERE id = $7`,
    [
      row.file,
      row.fileIssuedAt,
      row.fileExpiresAt,
      row.expiresAt,
      row.maxMachines ?? null,
      row.maxUsers ?? null,
      id,
    ],
    PREPARED,
  );
  await sql.unsafe(
    `UPDATE licenses SET file_issued_at = $1, file_expires_at = $2, expires_at = $3
     WHERE seat_of = $4`,
    [row.fileIssuedAt, row.fileExpiresAt, row.expiresAt, id],
    PREPARED,
  );
}

/** Inserts a license and returns its row id. */
export async function insertLicense(
  sql: TxSql,
  row: NewLicenseRow,
  now: number,
): Promise<number> {
  const [inserted] = await sql.unsafe<{ id: number }[]>(
    `INSERT INTO licenses
       (guid, file, key, pool_id, created_at, file_issued_at, file_expires_at, expires_at,
        max_machines, max_users)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
    [
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
    ],
    PREPARED,
  );
  return inserted.id;
}

/**
 * Inserts `count` seat rows of license `licenseId`, numbered from 2, in
 * order: each copies its pool and dates. Seat n's fillers, as SQLite's:
 * guid and key of the license with `#seat-n` appended, and as file the
 * UTF-8 text `seat n of license <guid>`, never a certificate.
 */
export async function insertSeats(
  sql: TxSql,
  licenseId: number,
  count: number,
  now: number,
): Promise<void> {
  await sql.unsafe(
    `INSERT INTO licenses
       (guid, file, key, pool_id, created_at, file_issued_at, file_expires_at, expires_at,
        seat_of)
     SELECT l.guid || '#seat-' || seat.n,
       convert_to('seat ' || seat.n || ' of license ' || l.guid, 'UTF8'),
       l.key || '#seat-' || seat.n, l.pool_id, $3, l.file_issued_at, l.file_expires_at,
       l.expires_at, l.id
     FROM licenses l, generate_series(2, $2::bigint + 1) AS seat (n)
     WHERE l.id = $1 ORDER BY seat.n`,
    [licenseId, count, now],
    PREPARED,
  );
}

/** One license by its Keygen id (never a seat row). */
export async function licenseByGuid(
  sql: TxSql,
  guid: string,
): Promise<LicenseInfo | undefined> {
  const [row] = await sql.unsafe<LicenseInfo[]>(
    `${LICENSE_INFO_SELECT} WHERE l.guid = $1 AND l.seat_of IS NULL`,
    [guid],
    PREPARED,
  );
  return row;
}

/**
 * Every row of license `licenseId`, each with its own lease: the license's
 * row first, then its seat rows (none for a single-seat license).
 */
export async function licenseSeats(sql: TxSql, licenseId: number): Promise<LicenseInfo[]> {
  return [...await sql.unsafe<LicenseInfo[]>(LICENSE_SEATS_SELECT, [licenseId], PREPARED)];
}

/**
 * All licenses in the order they were added, or those of one pool, or only
 * those whose file or license expires at or before `expiringBy`. Seat rows
 * are not listed: a multi-seat license is one entry, with its seats counted.
 */
export async function licenses(
  sql: TxSql,
  filter: { poolId?: number; expiringBy?: number } = {},
): Promise<LicenseInfo[]> {
  const conditions: string[] = ["l.seat_of IS NULL"];
  const params: number[] = [];
  if (filter.poolId !== undefined) {
    params.push(filter.poolId);
    conditions.push(`l.pool_id = $${params.length}`);
  }
  if (filter.expiringBy !== undefined) {
    params.push(filter.expiringBy);
    conditions.push(`${VALID_UNTIL} <= $${params.length}`);
  }
  return [
    ...await sql.unsafe<LicenseInfo[]>(
      `${LICENSE_INFO_SELECT} WHERE ${conditions.join(" AND ")} ORDER BY l.id`,
      params,
      PREPARED,
    ),
  ];
}

/**
 * Deletes a license by row id, with its seat rows, in one statement (named
 * here, though `seat_of` cascades too).
 */
export async function deleteLicense(sql: TxSql, id: number): Promise<void> {
  await sql.unsafe("DELETE FROM licenses WHERE id = $1 OR seat_of = $1", [id], PREPARED);
}
