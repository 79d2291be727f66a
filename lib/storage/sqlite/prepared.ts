/**
 * Prepared statements of one SQLite connection, each prepared once, on first
 * use, and kept by its SQL text.
 *
 * @module
 */

import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";

/** The statements of one connection, run by their SQL text. */
export class PreparedStatements {
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();

  /** Statements of `db`. */
  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** The first row, or undefined. */
  get<T>(sql: string, ...params: SQLInputValue[]): T | undefined {
    return this.#statement(sql).get(...params) as T | undefined;
  }

  /** Every row. */
  all<T>(sql: string, ...params: SQLInputValue[]): T[] {
    return this.#statement(sql).all(...params) as T[];
  }

  /** Runs a statement for its effect. */
  run(sql: string, ...params: SQLInputValue[]): void {
    this.#statement(sql).run(...params);
  }

  /** Runs a statement and returns how many rows it changed. */
  changes(sql: string, ...params: SQLInputValue[]): number {
    return Number(this.#statement(sql).run(...params).changes);
  }

  /** Runs SQL without parameters, unprepared (schema statements). */
  exec(sql: string): void {
    this.#db.exec(sql);
  }

  /** Forgets the prepared statements, before the connection closes. */
  clear(): void {
    this.#statements.clear();
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}
