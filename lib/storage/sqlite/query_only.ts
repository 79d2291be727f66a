/**
 * A connection that looks at an existing database without changing it, for
 * `relay backup` and `relay doctor`: never creates the file, applies no
 * pragma that writes and no migration, and refuses every statement that
 * would change a row (`PRAGMA query_only`).
 *
 * It is opened read-write rather than read-only on purpose: a read-only
 * connection to a WAL database that nobody else has open creates the `-wal`
 * and `-shm` files and cannot remove them when it closes, while a read-write
 * one removes them as every Relay command does.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { DatabaseError } from "../../errors.ts";
import { reason } from "./errors.ts";
import { requireFile } from "./sqlite_store.ts";

/**
 * Opens the existing SQLite database at `path` with `query_only` on and a
 * busy timeout of `busyTimeoutMs` (default 2000).
 *
 * @throws {DatabaseError} no file at `path`, or SQLite cannot open it.
 */
export function openQueryOnly(
  path: string,
  options: { busyTimeoutMs?: number } = {},
): DatabaseSync {
  requireFile(path);
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path);
  } catch (error) {
    throw new DatabaseError(`Cannot open database "${path}": ${reason(error)}`, { cause: error });
  }
  try {
    db.exec(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 2000)}`);
    db.exec("PRAGMA query_only = ON");
  } catch (error) {
    db.close();
    throw new DatabaseError(`Cannot open database "${path}": ${reason(error)}`, { cause: error });
  }
  return db;
}

/**
 * Why the database would not accept a write right now (SQLite's words:
 * `attempt to write a readonly database`, `database is locked`), or null if
 * it would: takes the write lock with `BEGIN IMMEDIATE` and rolls back at
 * once, changing nothing. `query_only` is lifted for that moment only.
 */
export function writeRefusal(db: DatabaseSync): string | null {
  db.exec("PRAGMA query_only = OFF");
  try {
    db.exec("BEGIN IMMEDIATE");
    db.exec("ROLLBACK");
    return null;
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    return reason(error);
  } finally {
    db.exec("PRAGMA query_only = ON");
  }
}
