/**
 * The statements that read the audit log for `relay audit` and the denial
 * counts of `relay leases`: rows with the names of the license, node and
 * pool they refer to, filtered in SQL. `SqliteTx` (`./statements.ts`)
 * extends this class.
 *
 * @module
 */

// node:sqlite is synchronous: the methods are async only to fit the engine-neutral Tx.
// deno-lint-ignore-file require-await

import type { SQLInputValue } from "node:sqlite";
import { EntityType, type EventType } from "../../audit.ts";
import type { AuditLogQuery, AuditLogRow } from "../store.ts";
import { LeaseQueries } from "./lease_queries.ts";

/**
 * Audit rows with names: a license event's license (gone once deleted), a
 * node or user event's holder key (`lib/holders.ts`), the pool of `pool_id` or of a `pool.added` entity.
 */
const AUDIT_LOG_SELECT = `
  SELECT a.id AS id, a.event_type_id AS event, a.entity_type_id AS entity,
         a.entity_id AS entityId, a.pool_id AS poolId,
         COALESCE(p.name, pe.name) AS poolName, a.created_at AS createdAt,
         l.guid AS licenseGuid, n.fingerprint AS nodeFingerprint
  FROM audit_logs a
  LEFT JOIN pools p ON p.id = a.pool_id
  LEFT JOIN pools pe ON a.entity_type_id = ${EntityType.pool} AND pe.id = a.entity_id
  LEFT JOIN licenses l ON a.entity_type_id = ${EntityType.license} AND l.id = a.entity_id
  LEFT JOIN nodes n ON a.entity_type_id IN (${EntityType.node}, ${EntityType.user})
    AND n.id = a.entity_id`;

/** The audit log statements of `SqliteTx`. */
export class AuditQueries extends LeaseQueries {
  /** By the index on `created_at`. */
  async auditEventCounts(
    event: EventType,
    since: number,
  ): Promise<{ poolId: number | null; count: number }[]> {
    return this.sql.all(
      `SELECT pool_id AS poolId, count(*) AS count FROM audit_logs
       WHERE created_at >= ? AND event_type_id = ?
       GROUP BY pool_id ORDER BY pool_id`,
      since,
      event,
    );
  }

  /**
   * One statement text per combination of filters (prepared once each); the
   * event list is one JSON parameter, so its length makes no new statement.
   */
  async auditLogRows(query: AuditLogQuery): Promise<AuditLogRow[]> {
    const conditions: string[] = [];
    const params: SQLInputValue[] = [];
    if (query.events !== undefined) {
      conditions.push("a.event_type_id IN (SELECT value FROM json_each(?))");
      params.push(JSON.stringify(query.events));
    }
    if (query.excludeEvents !== undefined) {
      conditions.push("a.event_type_id NOT IN (SELECT value FROM json_each(?))");
      params.push(JSON.stringify(query.excludeEvents));
    }
    if (query.entities !== undefined) {
      const any = query.entities.map(() => "(a.entity_type_id = ? AND a.entity_id = ?)");
      conditions.push(any.length === 0 ? "0" : `(${any.join(" OR ")})`);
      params.push(...query.entities.flatMap(({ entity, id }) => [entity, id]));
    }
    if (query.poolId !== undefined) {
      conditions.push(
        `(a.pool_id = ? OR (a.entity_type_id = ${EntityType.pool} AND a.entity_id = ?))`,
      );
      params.push(query.poolId, query.poolId);
    }
    for (
      const [condition, value] of [
        ["a.created_at >= ?", query.since],
        ["a.created_at <= ?", query.until],
        ["a.id > ?", query.afterId],
      ] as const
    ) {
      if (value === undefined) continue;
      conditions.push(condition);
      params.push(value);
    }
    const where = conditions.length === 0 ? "" : ` WHERE ${conditions.join(" AND ")}`;
    const limit = query.limit ?? -1;
    const sql = query.take === "first"
      ? `${AUDIT_LOG_SELECT}${where} ORDER BY a.id LIMIT ?`
      : `SELECT * FROM (${AUDIT_LOG_SELECT}${where} ORDER BY a.id DESC LIMIT ?) ORDER BY id`;
    return this.sql.all<AuditLogRow>(sql, ...params, limit);
  }
}
