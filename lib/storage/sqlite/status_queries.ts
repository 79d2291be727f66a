/**
 * The read-only statements behind the status page (`relay serve --ui`) and
 * `/metrics` beyond those `relay leases` and `relay audit` share with them
 * (`./lease_queries.ts`, `./audit_queries.ts`): the newest audit id and the
 * leased seats' changes over time. `SqliteTx` (`./statements.ts`) extends
 * this class.
 *
 * @module
 */

// node:sqlite is synchronous: the methods are async only to fit the engine-neutral Tx.
// deno-lint-ignore-file require-await

import { eventIdList, SEAT_GAINED_EVENTS, SEAT_LOST_EVENTS } from "../../audit.ts";
import type { SeatChange, StatusReads } from "../store.ts";
import { FreeLicenseStatements } from "./free_licenses.ts";

/** The status statements of `SqliteTx`. */
export class StatusStatements extends FreeLicenseStatements implements StatusReads {
  async lastAuditId(): Promise<number> {
    return this.sql.get<{ id: number | null }>("SELECT max(id) AS id FROM audit_logs")?.id ?? 0;
  }

  /**
   * Reads idx_audit_logs_created_at from `since` on. The width is cast: a JS
   * number is bound as a REAL, and a REAL division would not bucket at all.
   */
  async seatChanges(
    { since, bucketSeconds }: { since: number; bucketSeconds: number },
  ): Promise<SeatChange[]> {
    return this.sql.all<SeatChange>(
      `SELECT (created_at / CAST(?2 AS INTEGER)) * CAST(?2 AS INTEGER) AS at,
         sum(CASE WHEN event_type_id IN ${
        eventIdList(SEAT_GAINED_EVENTS)
      } THEN 1 ELSE -1 END) AS delta
       FROM audit_logs
       WHERE created_at >= ?1 AND event_type_id IN ${
        eventIdList([...SEAT_GAINED_EVENTS, ...SEAT_LOST_EVENTS])
      }
       GROUP BY 1 ORDER BY 1`,
      since,
      Math.max(1, Math.trunc(bucketSeconds)),
    );
  }
}
