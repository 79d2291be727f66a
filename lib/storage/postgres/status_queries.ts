/**
 * The read-only statements of `PgTx` (`./statements.ts`) behind the status
 * page (`relay serve --ui`) and `/metrics` beyond those `relay leases` and
 * `relay audit` share with them: the newest audit id and the leased seats'
 * changes over time. The PostgreSQL port of `../sqlite/status_queries.ts`:
 * the same rows give the same results, in the same order.
 *
 * @module
 */

import { eventIdList, SEAT_GAINED_EVENTS, SEAT_LOST_EVENTS } from "../../audit.ts";
import type { SeatChange } from "../store.ts";
import type { TxSql } from "./connect.ts";

/** Statements are prepared once per connection, by their text. */
const PREPARED = { prepare: true } as const;

/** The greatest audit row id, 0 when the log is empty. */
export async function lastAuditId(sql: TxSql): Promise<number> {
  const [row] = await sql.unsafe<{ id: number | null }[]>(
    `SELECT max(id) AS "id" FROM audit_logs`,
    [],
    PREPARED,
  );
  return row?.id ?? 0;
}

/**
 * Leases granted minus ended per bucket of `bucketSeconds` since `since`
 * (unix seconds), oldest first; buckets without change are left out. Reads
 * the index on `created_at` from `since` on.
 */
export async function seatChanges(
  sql: TxSql,
  { since, bucketSeconds }: { since: number; bucketSeconds: number },
): Promise<SeatChange[]> {
  // BIGINT division truncates, as SQLite's integer division does.
  return [
    ...await sql.unsafe<SeatChange[]>(
      `SELECT (created_at / $2::bigint) * $2::bigint AS "at",
         sum(CASE WHEN event_type_id IN ${
        eventIdList(SEAT_GAINED_EVENTS)
      } THEN 1 ELSE -1 END)::bigint
           AS "delta"
       FROM audit_logs
       WHERE created_at >= $1 AND event_type_id IN ${
        eventIdList([...SEAT_GAINED_EVENTS, ...SEAT_LOST_EVENTS])
      }
       GROUP BY 1 ORDER BY 1`,
      [since, Math.max(1, Math.trunc(bucketSeconds))],
      PREPARED,
    ),
  ];
}
