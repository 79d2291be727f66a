/**
 * The statements behind `relay leases`, `relay release`, the status page and
 * `/metrics`: nodes by fingerprint in any state, the leases held with their
 * nodes and pools, and each pool's licenses counted by state. `SqliteTx` (`./statements.ts`)
 * extends this class through `./audit_queries.ts`.
 *
 * @module
 */

// node:sqlite is synchronous: the methods are async only to fit the engine-neutral Tx.
// deno-lint-ignore-file require-await

import type { SQLInputValue } from "node:sqlite";
import type { EntityType } from "../../audit.ts";
import type { LeaseDetail, LeaseFilter, NodeRow, Pool, PoolLicenseCounts } from "../store.ts";
import { StatusStatements } from "./status_queries.ts";
import { VALID_UNTIL } from "./schema.ts";

// A seat row of a multi-seat license (migration 11) is named by its license (m).
const LEASE_DETAIL_SELECT = `
  SELECT l.id AS licenseId, IFNULL(m.guid, l.guid) AS licenseGuid, l.seat_of AS seatOf,
         1 + (SELECT count(*) FROM licenses s WHERE s.seat_of = IFNULL(l.seat_of, l.id)) AS seats,
         l.pool_id AS poolId, p.name AS poolName,
         n.id AS nodeId, n.fingerprint AS nodeFingerprint, l.last_claimed_at AS claimedAt,
         n.last_heartbeat_at AS lastHeartbeatAt, n.lease_expires_at AS leaseExpiresAt,
         l.file_expires_at AS fileExpiresAt, l.expires_at AS expiresAt
  FROM licenses l
  JOIN nodes n ON n.id = l.node_id
  LEFT JOIN pools p ON p.id = l.pool_id
  LEFT JOIN licenses m ON m.id = l.seat_of`;

/** The lease and node statements of `SqliteTx`. */
export class LeaseQueries extends StatusStatements {
  async nodeByFingerprint(fingerprint: string): Promise<NodeRow | undefined> {
    return this.sql.get<NodeRow>(
      `SELECT id, fingerprint, last_heartbeat_at AS lastHeartbeatAt,
              lease_expires_at AS leaseExpiresAt, created_at AS createdAt,
              deactivated_at AS deactivatedAt
       FROM nodes WHERE fingerprint = ?`,
      fingerprint,
    );
  }

  async insertInactiveHolder(
    key: string,
    { holderType, now }: { holderType: EntityType; now: number },
  ): Promise<number> {
    return this.sql.get<{ id: number }>(
      `INSERT INTO nodes (fingerprint, created_at, deactivated_at, holder_type)
       VALUES (?1, ?2, ?2, ?3) RETURNING id`,
      key,
      now,
      holderType,
    )!.id;
  }

  /** Uses idx_licenses_pool_node for a pool, the unique index on node_id for a node. */
  async leaseDetails(filter: LeaseFilter = {}): Promise<LeaseDetail[]> {
    const conditions = ["l.node_id IS NOT NULL"];
    const params: SQLInputValue[] = [];
    for (
      const [column, value] of [
        ["l.pool_id", filter.poolId],
        ["l.node_id", filter.nodeId],
      ] as const
    ) {
      if (value === undefined) continue;
      conditions.push(`${column} = ?`);
      params.push(value);
    }
    if (filter.licenseId !== undefined) {
      // The license's row and its seat rows.
      conditions.push("(l.id = ? OR l.seat_of = ?)");
      params.push(filter.licenseId, filter.licenseId);
    }
    const order = filter.soonestFirst
      ? "n.lease_expires_at IS NULL, n.lease_expires_at, l.id"
      : "l.id";
    return this.sql.all<LeaseDetail>(
      `${LEASE_DETAIL_SELECT} WHERE ${conditions.join(" AND ")} ORDER BY ${order} LIMIT ?`,
      ...params,
      filter.limit ?? -1,
    );
  }

  /** One pass over `licenses`, grouped in SQL. */
  async poolLicenseCounts(
    { now, within }: { now: number; within: number },
  ): Promise<PoolLicenseCounts[]> {
    return this.sql.all<PoolLicenseCounts>(
      `SELECT l.pool_id AS poolId, p.name AS poolName, count(*) AS licenses,
         count(*) FILTER (WHERE l.node_id IS NOT NULL
           AND (n.lease_expires_at IS NULL OR n.lease_expires_at > ?1)) AS leased,
         count(*) FILTER (WHERE l.node_id IS NOT NULL AND n.lease_expires_at <= ?1)
           AS expiredLeases,
         count(*) FILTER (WHERE l.node_id IS NULL) AS free,
         count(*) FILTER (WHERE ${VALID_UNTIL} > ?1 AND ${VALID_UNTIL} <= ?1 + ?2) AS expiring,
         count(*) FILTER (WHERE ${VALID_UNTIL} <= ?1) AS expired,
         count(*) FILTER (WHERE ${VALID_UNTIL} <= ?1 AND NOT (l.node_id IS NOT NULL
           AND (n.lease_expires_at IS NULL OR n.lease_expires_at > ?1))) AS expiredUnleased
       FROM licenses l
       LEFT JOIN nodes n ON n.id = l.node_id
       LEFT JOIN pools p ON p.id = l.pool_id
       GROUP BY l.pool_id
       ORDER BY l.pool_id`,
      now,
      within,
    );
  }

  async pools(): Promise<Pool[]> {
    return this.sql.all<Pool>("SELECT id, name, created_at AS createdAt FROM pools ORDER BY id");
  }
}
