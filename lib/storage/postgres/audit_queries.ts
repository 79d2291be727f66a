/**
 * The statements of `PgTx` (`./statements.ts`) on the audit log: the rows
 * `relay audit` lists with the names of the license, node and pool they
 * refer to, the denial counts of `relay leases`, and the pruning of old
 * rows. The PostgreSQL port of `../sqlite/audit_queries.ts` and of
 * `deleteAuditBefore` in `../sqlite/statements.ts`: the same rows give the
 * same results, in the same order.
 *
 * @module
 */

import { EntityType, type EventType } from "../../audit.ts";
import type { AuditLogQuery, AuditLogRow } from "../store.ts";
import type { TxSql } from "./connect.ts";

/** Statements are prepared once per connection, by their text. */
const PREPARED = { prepare: true } as const;

/**
 * Audit rows with names: a license event's license (gone once deleted), a
 * node or user event's holder key (`lib/holders.ts`), the pool of `pool_id`
 * or of a `pool.added` entity.
 */
const AUDIT_LOG_SELECT = `
  SELECT a.id AS "id", a.event_type_id AS "event", a.entity_type_id AS "entity",
         a.entity_id AS "entityId", a.pool_id AS "poolId",
         COALESCE(p.name, pe.name) AS "poolName", a.created_at AS "createdAt",
         l.guid AS "licenseGuid", n.fingerprint AS "nodeFingerprint"
  FROM audit_logs a
  LEFT JOIN pools p ON p.id = a.pool_id
  LEFT JOIN pools pe ON a.entity_type_id = ${EntityType.pool} AND pe.id = a.entity_id
  LEFT JOIN licenses l ON a.entity_type_id = ${EntityType.license} AND l.id = a.entity_id
  LEFT JOIN nodes n ON a.entity_type_id IN (${EntityType.node}, ${EntityType.user})
    AND n.id = a.entity_id`;

/**
 * How many audit rows of `event` were written at or after `since`, per pool
 * id (null: none, first), by the index on `created_at`.
 */
export async function auditEventCounts(
  sql: TxSql,
  event: EventType,
  since: number,
): Promise<{ poolId: number | null; count: number }[]> {
  return [
    ...await sql.unsafe<{ poolId: number | null; count: number }[]>(
      `SELECT pool_id AS "poolId", count(*) AS "count" FROM audit_logs
       WHERE created_at >= $1 AND event_type_id = $2
       GROUP BY pool_id ORDER BY pool_id NULLS FIRST`,
      [since, event],
      PREPARED,
    ),
  ];
}

/** `{1,2,3}`: a SMALLINT[] literal of event ids, one parameter whatever its length. */
function eventArray(events: readonly EventType[]): string {
  return `{${events.map((event) => Math.trunc(event)).join(",")}}`;
}

/**
 * Audit rows matching `query`, oldest first, with the names they refer to:
 * the latest `limit` of them (`take: "last"`), or the first `limit` after
 * `afterId` (`take: "first"`). One statement text per combination of filters
 * (prepared once each); an event list is one array parameter, so its length
 * makes no new statement.
 */
export async function auditLogRows(sql: TxSql, query: AuditLogQuery): Promise<AuditLogRow[]> {
  const conditions: string[] = [];
  const params: (number | string | null)[] = [];
  /** `$n` of a new parameter. */
  const param = (value: number | string | null): string => {
    params.push(value);
    return `$${params.length}`;
  };
  if (query.events !== undefined) {
    conditions.push(`a.event_type_id = ANY(${param(eventArray(query.events))}::smallint[])`);
  }
  if (query.excludeEvents !== undefined) {
    conditions.push(
      `a.event_type_id <> ALL(${param(eventArray(query.excludeEvents))}::smallint[])`,
    );
  }
  if (query.entities !== undefined) {
    const any = query.entities.map(({ entity, id }) =>
      `(a.entity_type_id = ${param(entity)} AND a.entity_id = ${param(id)})`
    );
    conditions.push(any.length === 0 ? "false" : `(${any.join(" OR ")})`);
  }
  if (query.poolId !== undefined) {
    const pool = param(query.poolId);
    conditions.push(
      `(a.pool_id = ${pool} OR (a.entity_type_id = ${EntityType.pool} AND a.entity_id = ${pool}))`,
    );
  }
  for (
    const [condition, value] of [
      ["a.created_at >=", query.since],
      ["a.created_at <=", query.until],
      ["a.id >", query.afterId],
    ] as const
  ) {
    if (value === undefined) continue;
    conditions.push(`${condition} ${param(value)}`);
  }
  const where = conditions.length === 0 ? "" : ` WHERE ${conditions.join(" AND ")}`;
  // LIMIT NULL: no limit (SQLite's LIMIT -1).
  const limit = param(query.limit);
  const text = query.take === "first"
    ? `${AUDIT_LOG_SELECT}${where} ORDER BY a.id LIMIT ${limit}`
    : `SELECT * FROM (${AUDIT_LOG_SELECT}${where} ORDER BY a.id DESC LIMIT ${limit}) AS latest
       ORDER BY "id"`;
  return [...await sql.unsafe<AuditLogRow[]>(text, params, PREPARED)];
}

/**
 * Deletes up to `limit` audit records created before `cutoff`, oldest
 * first (by `created_at`, then id, as SQLite's index on `created_at` gives
 * them); returns how many.
 */
export async function deleteAuditBefore(
  sql: TxSql,
  cutoff: number,
  limit: number,
): Promise<number> {
  const result = await sql.unsafe(
    `DELETE FROM audit_logs WHERE id IN
       (SELECT id FROM audit_logs WHERE created_at < $1 ORDER BY created_at, id LIMIT $2)`,
    [cutoff, limit],
    PREPARED,
  );
  return result.count;
}
