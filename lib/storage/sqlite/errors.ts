/**
 * SQLite's failures as Relay's typed {@link DatabaseError}, naming the file.
 *
 * @module
 */

import { DatabaseError } from "../../errors.ts";

/**
 * SQLite's own failures (disk full, locked too long, corrupt, read-only) as a
 * {@link DatabaseError} that names the file; other errors pass through.
 */
export function asDatabaseError(error: unknown, path: string): unknown {
  if (
    error instanceof Error && (error as Error & { code?: string }).code === "ERR_SQLITE_ERROR"
  ) {
    return new DatabaseError(`Database "${path}" failed: ${error.message}`, { cause: error });
  }
  return error;
}

/** SQLite's primary result code for a broken constraint: the caller's doing, not the database's. */
const SQLITE_CONSTRAINT = 19;

/**
 * Why a transaction failed in the database, in SQLite's words and without
 * the path (`attempt to write a readonly database`, `database is locked`,
 * `disk I/O error`); null when `error` is not the database's failure (an
 * error of the caller's, or a constraint it broke).
 */
export function databaseFailure(error: unknown): string | null {
  if (!(error instanceof DatabaseError)) return null;
  const cause = error.cause as (Error & { errcode?: number }) | undefined;
  if (!(cause instanceof Error)) return "the transaction was rolled back";
  if (((cause.errcode ?? 0) & 0xff) === SQLITE_CONSTRAINT) return null;
  return cause.message;
}

/** An error's message, or the thrown value as text. */
export function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
