/**
 * The statements of `PgTx` (`./statements.ts`) behind `relay leases`,
 * `relay release`, the status page and `/metrics`: the leases held with their
 * nodes and pools, each pool's licenses counted by state, and the pools. The
 * PostgreSQL port of `../sqlite/lease_queries.ts`: the same rows give the
 * same results, in the same order.
 *
 * @module
 */

import type { LeaseDetail, LeaseFilter, Pool, PoolLicenseCounts } from "../store.ts";
import type { TxSql } from "./connect.ts";
import { VALID_UNTIL } from "./schema.ts";

/** Statements are prepared once per connection, by their text. */
const PREPARED = { prepare: true } as const;

// A seat row of a multi-seat license is named by its license (m).
const LEASE_DETAIL_SELECT = `
  SELECT l.id AS "licenseId", COALESCE(m.guid, l.guid) AS "licenseGuid", l.seat_of AS "seatOf",
         1 + (SELECT count(*) FROM licenses s WHERE s.seat_of = COALESCE(l.seat_of, l.id))
           AS "seats",
         l.pool_id AS "poolId", p.name AS "poolName",
         n.id AS "nodeId", n.fingerprint AS "nodeFingerprint", l.last_claimed_at AS "claimedAt",
         n.last_heartbeat_at AS "lastHeartbeatAt", n.lease_expires_at AS "leaseExpiresAt",
         l.file_expires_at AS "fileExpiresAt", l.expires_at AS "expiresAt"
  FROM licenses l
  JOIN nodes n ON n.id = l.node_id
  LEFT JOIN pools p ON p.id = l.pool_id
  LEFT JOIN licenses m ON m.id = l.seat_of`;

/**
 * Every lease held (licenses with a node, expired ones not yet reaped
 * included), in license order, or those of one pool, node or license. Uses
 * the index on (pool_id, node_id) for a pool, the unique index on node_id
 * for a node.
 */
export async function leaseDetails(sql: TxSql, filter: LeaseFilter = {}): Promise<LeaseDetail[]> {
  const conditions = ["l.node_id IS NOT NULL"];
  const params: (number | null)[] = [];
  for (
    const [column, value] of [
      ["l.pool_id", filter.poolId],
      ["l.node_id", filter.nodeId],
    ] as const
  ) {
    if (value === undefined) continue;
    params.push(value);
    conditions.push(`${column} = $${params.length}`);
  }
  if (filter.licenseId !== undefined) {
    // The license's row and its seat rows.
    params.push(filter.licenseId);
    conditions.push(`(l.id = $${params.length} OR l.seat_of = $${params.length})`);
  }
  const order = filter.soonestFirst
    ? "n.lease_expires_at IS NULL, n.lease_expires_at, l.id"
    : "l.id";
  // LIMIT NULL: no limit (SQLite's LIMIT -1).
  params.push(filter.limit ?? null);
  return [
    ...await sql.unsafe<LeaseDetail[]>(
      `${LEASE_DETAIL_SELECT} WHERE ${conditions.join(" AND ")}
       ORDER BY ${order} LIMIT $${params.length}`,
      params,
      PREPARED,
    ),
  ];
}

/**
 * The licenses of each pool counted by lease and file state at `now`, one
 * row per pool that has licenses, the licenses without a pool as pool null;
 * in pool id order, no pool first. One pass over `licenses`, grouped in SQL.
 */
export async function poolLicenseCounts(
  sql: TxSql,
  { now, within }: { now: number; within: number },
): Promise<PoolLicenseCounts[]> {
  return [
    ...await sql.unsafe<PoolLicenseCounts[]>(
      `SELECT l.pool_id AS "poolId", p.name AS "poolName", count(*) AS "licenses",
         count(*) FILTER (WHERE l.node_id IS NOT NULL
           AND (n.lease_expires_at IS NULL OR n.lease_expires_at > $1)) AS "leased",
         count(*) FILTER (WHERE l.node_id IS NOT NULL AND n.lease_expires_at <= $1)
           AS "expiredLeases",
         count(*) FILTER (WHERE l.node_id IS NULL) AS "free",
         count(*) FILTER (WHERE ${VALID_UNTIL} > $1 AND ${VALID_UNTIL} <= $1 + $2)
           AS "expiring",
         count(*) FILTER (WHERE ${VALID_UNTIL} <= $1) AS "expired",
         count(*) FILTER (WHERE ${VALID_UNTIL} <= $1 AND NOT (l.node_id IS NOT NULL
           AND (n.lease_expires_at IS NULL OR n.lease_expires_at > $1))) AS "expiredUnleased"
       FROM licenses l
       LEFT JOIN nodes n ON n.id = l.node_id
       LEFT JOIN pools p ON p.id = l.pool_id
       GROUP BY l.pool_id, p.name
       ORDER BY l.pool_id NULLS FIRST`,
      [now, within],
      PREPARED,
    ),
  ];
}

/** Every pool, in the order they were created. */
export async function pools(sql: TxSql): Promise<Pool[]> {
  return [
    ...await sql.unsafe<Pool[]>(
      `SELECT id, name, created_at AS "createdAt" FROM pools ORDER BY id`,
      [],
      PREPARED,
    ),
  ];
}
