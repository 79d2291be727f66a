/**
 * The audit rows of one PostgreSQL transaction, held until it commits and
 * then written by one statement, sent with the `COMMIT` (`PgTx.flush`).
 * A transaction's audit rows stay in it: written before it commits, never
 * when it rolls back, in the order they were recorded (their ids too).
 *
 * @module
 */

import type { AuditEntry } from "../store.ts";
import type { TransactionSql } from "./connect.ts";

/** Audit rows recorded and not yet written, column by column. */
export class AuditBuffer {
  #events: number[] = [];
  #entities: number[] = [];
  #entityIds: number[] = [];
  #poolIds: (number | null)[] = [];
  #createdAt: number[] = [];

  /** Whether no row waits. */
  get empty(): boolean {
    return this.#events.length === 0;
  }

  /** Records one row, after those recorded before. */
  add({ event, entity, entityId, poolId, now }: AuditEntry): void {
    this.#events.push(event);
    this.#entities.push(entity);
    this.#entityIds.push(entityId);
    this.#poolIds.push(poolId);
    this.#createdAt.push(now);
  }

  /**
   * Sends the rows recorded so far as one INSERT, deferred (it reaches the
   * server with the next statement or the COMMIT), and forgets them. Rows
   * keep their order: `unnest … WITH ORDINALITY … ORDER BY` inserts (and
   * numbers) them as they were recorded.
   */
  flush(sql: TransactionSql): void {
    if (this.empty) return;
    sql.defer(sql`
      INSERT INTO audit_logs (event_type_id, entity_type_id, entity_id, pool_id, created_at)
      SELECT e, t, i, p, c
      FROM unnest(${sql.array(this.#events)}::smallint[], ${sql.array(this.#entities)}::smallint[],
                  ${sql.array(this.#entityIds)}::bigint[],
                  ${sql.array(this.#poolIds as number[])}::bigint[],
                  ${sql.array(this.#createdAt)}::bigint[])
        WITH ORDINALITY AS r (e, t, i, p, c, n)
      ORDER BY n`);
    this.#events = [];
    this.#entities = [];
    this.#entityIds = [];
    this.#poolIds = [];
    this.#createdAt = [];
  }
}
