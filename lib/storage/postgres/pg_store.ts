/**
 * The PostgreSQL engine: a pool of connections to one database (several
 * `relay serve` may share it), migrated on open, serving {@link Store}
 * transactions concurrently, each on a connection of its own.
 *
 * Transactions that may write run at READ COMMITTED; the statements lock
 * what they change (`./statements.ts`), so claims on different holders and
 * licenses never wait for each other. Reads run on a READ ONLY REPEATABLE
 * READ snapshot. A transaction PostgreSQL aborts as a deadlock or
 * serialization failure runs again, up to {@link ATTEMPTS} times (a body
 * does nothing but database work, so running it again is safe). A server
 * out of reach fails the call with a `DatabaseUnavailableError`; the pool
 * reconnects by itself on the next one.
 *
 * @module
 */

import { DatabaseError, RelayError } from "../../errors.ts";
import type { Store, TransactionOptions, Tx } from "../store.ts";
import { connectPostgres, redactUrl, type Sql, type TransactionSql } from "./connect.ts";
import { asDatabaseError, databaseFailure, isRetryable } from "./errors.ts";
import { migratePostgres } from "./migrate.ts";
import { PgTx } from "./statements.ts";

/** Runs of one transaction that PostgreSQL aborted as a deadlock, at most. */
const ATTEMPTS = 3;

/** Options of {@link openPostgresStore}. */
export interface PostgresStoreOptions {
  /** Current unix time in seconds, recorded with applied migrations. */
  now: number;
  /**
   * False, for commands that only read: an empty database is refused
   * instead of given Relay's schema (default true).
   */
  create?: boolean;
  /** Write audit rows (default true); false makes `Tx.audit` a no-op. */
  audit?: boolean;
  /** The password, when the URL has none. */
  password?: string;
  /** Most connections the pool opens (default 10). */
  poolSize?: number;
}

/** An open PostgreSQL database. Create it with {@link openPostgresStore}. */
export class PostgresStore implements Store {
  readonly #sql: Sql;
  readonly #audit: boolean;
  #writeFailure: string | null = null;
  #closed: Promise<void> | null = null;

  /** Use {@link openPostgresStore}: it migrates the database first. */
  constructor(sql: Sql, options: { audit?: boolean }) {
    this.#sql = sql;
    this.#audit = options.audit ?? true;
  }

  get auditEnabled(): boolean {
    return this.#audit;
  }

  async transaction<T>(
    fn: (tx: Tx) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    if (this.#closed) throw new Error("The store is closed");
    for (let attempt = 1;; attempt++) {
      try {
        const result = await this.#sql.begin(async (sql) => {
          // Not waiting for the WAL flush: the reaper's changes (see TransactionOptions).
          if (options.durable === false) sql.defer(sql`SET LOCAL synchronous_commit = off`);
          return await this.#run(sql, fn);
        });
        this.#writeFailure = null;
        return result[0] as T;
      } catch (error) {
        if (attempt < ATTEMPTS && isRetryable(error)) continue;
        const failure = asDatabaseError(error);
        this.#writeFailure = databaseFailure(failure);
        throw failure;
      }
    }
  }

  async read<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error("The store is closed");
    try {
      const result = await this.#sql.begin(
        "isolation level repeatable read read only",
        (sql) => this.#run(sql, fn),
      );
      return result[0] as T;
    } catch (error) {
      throw asDatabaseError(error);
    }
  }

  writeFailure(): string | null {
    return this.#writeFailure;
  }

  /** Waits up to 5 seconds for running queries, then closes every connection. */
  close(): Promise<void> {
    this.#closed ??= this.#sql.end({ timeout: 5 });
    return this.#closed;
  }

  /** `fn` on a transaction's statements; its audit rows go out with the COMMIT. */
  async #run<T>(sql: TransactionSql, fn: (tx: Tx) => Promise<T>): Promise<[T]> {
    const tx = new PgTx(sql, { audit: this.#audit });
    const value = await fn(tx);
    tx.flush();
    return [value];
  }
}

/**
 * Connects to the PostgreSQL database at `url`, applies any pending
 * migrations in one transaction, and returns the store.
 *
 * @throws {DatabaseUnavailableError} the server cannot be reached.
 * @throws {DatabaseError} the database cannot be used: foreign tables, an
 *   empty one with `create: false`, a failure of the server.
 * @throws {DatabaseTooNewError} a newer Relay wrote it.
 */
export async function openPostgresStore(
  url: string,
  options: PostgresStoreOptions,
): Promise<PostgresStore> {
  const sql = connectPostgres(url, { password: options.password, max: options.poolSize });
  const name = redactUrl(url);
  try {
    await migratePostgres(sql, { name, now: options.now, create: options.create });
  } catch (error) {
    await sql.end({ timeout: 1 }).catch(() => {});
    const failure = asDatabaseError(error);
    if (failure instanceof RelayError) throw failure;
    throw new DatabaseError(`Cannot use database "${name}": ${reason(failure)}`, {
      cause: error,
    });
  }
  return new PostgresStore(sql, options);
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
