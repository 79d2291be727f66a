/**
 * The read-only statements behind the status page (`relay serve --ui`) and
 * `/metrics`: licenses by pool and state, current leases, audit rows, and
 * the leased seats' changes over time. `SqliteTx` (`./statements.ts`)
 * extends this class.
 *
 * @module
 */

// node:sqlite is synchronous: the methods are async only to fit the engine-neutral Tx.
// deno-lint-ignore-file require-await

import { EntityType, EventType } from "../../audit.ts";
import type {
  AuditFilter,
  AuditRecord,
  LeaseRow,
  LicenseStateCount,
  SeatChange,
  StatusReads,
} from "../store.ts";
import { FreeLicenseStatements } from "./free_licenses.ts";
import { VALID_UNTIL } from "./schema.ts";

/** Events that grant a seat (+1) or end one (−1). */
const SEAT_GAINED = [EventType.licenseLeased];
const SEAT_LOST = [
  EventType.licenseReleased,
  EventType.licenseLeaseExpired,
  EventType.licenseOperatorReleased,
];

/** `(1,2,3)` from event ids, which are integers of our own: safe to inline. */
function idList(ids: readonly number[]): string {
  return `(${ids.map((id) => Math.trunc(id)).join(",")})`;
}

/** The status statements of `SqliteTx`. */
export class StatusStatements extends FreeLicenseStatements implements StatusReads {
  /** Grouped in SQL: one pass over `licenses`, whatever their number. */
  async licenseStateCounts(now: number): Promise<LicenseStateCount[]> {
    return this.sql.all<LicenseStateCount>(
      `SELECT l.pool_id AS poolId, p.name AS poolName,
         CASE WHEN l.node_id IS NOT NULL
                AND (n.lease_expires_at IS NULL OR n.lease_expires_at > ?1) THEN 'leased'
              WHEN ${VALID_UNTIL} <= ?1 THEN 'expired'
              ELSE 'free' END AS state,
         count(*) AS count
       FROM licenses l
       LEFT JOIN pools p ON p.id = l.pool_id
       LEFT JOIN nodes n ON n.id = l.node_id
       GROUP BY 1, 3
       UNION ALL SELECT id, name, NULL, 0 FROM pools`,
      now,
    );
  }

  async leases(limit: number): Promise<LeaseRow[]> {
    return this.sql.all<LeaseRow>(
      `SELECT n.fingerprint AS fingerprint, IFNULL(m.guid, l.guid) AS licenseGuid,
         p.name AS poolName,
         l.last_claimed_at AS leasedAt, n.last_heartbeat_at AS lastHeartbeatAt,
         n.lease_expires_at AS leaseExpiresAt
       FROM licenses l
       JOIN nodes n ON n.id = l.node_id
       LEFT JOIN pools p ON p.id = l.pool_id
       LEFT JOIN licenses m ON m.id = l.seat_of
       ORDER BY n.lease_expires_at IS NULL, n.lease_expires_at, l.id
       LIMIT ?`,
      limit,
    );
  }

  /** Prepared once per distinct filter shape (the event lists are our constants). */
  async auditRecords(filter: AuditFilter): Promise<AuditRecord[]> {
    const conditions = ["a.id > ?1", "a.created_at >= ?2"];
    if (filter.events) conditions.push(`a.event_type_id IN ${idList(filter.events)}`);
    if (filter.excludeEvents) {
      conditions.push(`a.event_type_id NOT IN ${idList(filter.excludeEvents)}`);
    }
    return this.sql.all<AuditRecord>(
      `SELECT a.id AS id, a.event_type_id AS event, e.name AS eventName,
         a.entity_type_id AS entity, a.entity_id AS entityId, a.pool_id AS poolId,
         IFNULL(p.name, pe.name) AS poolName,
         a.created_at AS createdAt, n.fingerprint AS fingerprint, l.guid AS licenseGuid
       FROM audit_logs a
       JOIN event_types e ON e.id = a.event_type_id
       LEFT JOIN pools p ON p.id = a.pool_id
       LEFT JOIN pools pe ON a.entity_type_id = ${EntityType.pool} AND pe.id = a.entity_id
       LEFT JOIN nodes n ON a.entity_type_id IN (${EntityType.node}, ${EntityType.user})
         AND n.id = a.entity_id
       LEFT JOIN licenses l ON a.entity_type_id = ${EntityType.license} AND l.id = a.entity_id
       WHERE ${conditions.join(" AND ")}
       ORDER BY a.id ${filter.newestFirst ? "DESC" : "ASC"}
       LIMIT ?3`,
      filter.afterId ?? 0,
      filter.since ?? 0,
      filter.limit,
    );
  }

  async lastAuditId(): Promise<number> {
    return this.sql.get<{ id: number | null }>("SELECT max(id) AS id FROM audit_logs")?.id ?? 0;
  }

  /** Reads idx_audit_logs_created_at from `since` on. */
  async seatChanges(
    { since, bucketSeconds }: { since: number; bucketSeconds: number },
  ): Promise<SeatChange[]> {
    return this.sql.all<SeatChange>(
      `SELECT (created_at / ?2) * ?2 AS at,
         sum(CASE WHEN event_type_id IN ${idList(SEAT_GAINED)} THEN 1 ELSE -1 END) AS delta
       FROM audit_logs
       WHERE created_at >= ?1 AND event_type_id IN ${idList([...SEAT_GAINED, ...SEAT_LOST])}
       GROUP BY 1 ORDER BY 1`,
      since,
      Math.max(1, Math.trunc(bucketSeconds)),
    );
  }
}
