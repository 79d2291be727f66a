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

/** An error's message, or the thrown value as text. */
export function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
