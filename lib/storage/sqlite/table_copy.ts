/**
 * `relay migrate` on SQLite: reading the copied tables of a database in one
 * snapshot without changing it, and writing them into one in one
 * transaction (`../copy.ts` runs the copy).
 *
 * @module
 */

import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { DatabaseError } from "../../errors.ts";
import {
  type CopiedTable,
  COPY_COLUMNS,
  type CopyRow,
  type CopyValue,
  type TableReader,
  type TableWriter,
} from "../copy_tables.ts";
import { asDatabaseError, reason } from "./errors.ts";
import { schemaState } from "./migrate.ts";
import { openQueryOnly } from "./query_only.ts";
import { MIGRATIONS } from "./schema.ts";
import { openSqliteStore } from "./sqlite_store.ts";

/**
 * Runs `fn` on one snapshot of the SQLite database at `path` (a read
 * transaction: `relay serve` may go on writing meanwhile), which must exist
 * and be at this Relay's schema version. Changes nothing: no file is
 * created, no migration applied.
 *
 * @throws {DatabaseError} no file at `path`, not a Relay database, or one at
 *   an older schema version (opening it once with this Relay migrates it).
 * @throws {DatabaseTooNewError} a newer Relay wrote it.
 */
export async function readSqliteTables<T>(
  path: string,
  fn: (reader: TableReader) => Promise<T>,
): Promise<T> {
  const db = openQueryOnly(path, { busyTimeoutMs: 5000 });
  try {
    const { applied } = schemaState(db, { path });
    if (applied !== MIGRATIONS.length) {
      throw new DatabaseError(
        `Database "${path}" is at schema version ${applied}, not ${MIGRATIONS.length}: open it once with this Relay (e.g. relay ls --database ${path}) to bring it up to date, then copy it`,
      );
    }
    const selects = new Map<CopiedTable, StatementSync>();
    const reader: TableReader = {
      rows(table, { after, limit }) {
        let select = selects.get(table);
        if (select === undefined) {
          select = db.prepare(
            `SELECT ${COPY_COLUMNS[table].join(", ")} FROM ${table}
             WHERE id > ? ORDER BY id LIMIT ?`,
          );
          select.setReturnArrays(true);
          selects.set(table, select);
        }
        try {
          return Promise.resolve(select.all(after, limit) as unknown as CopyRow[]);
        } catch (error) {
          return Promise.reject(asDatabaseError(error, path));
        }
      },
    };
    // A deferred transaction reads one snapshot from its first read on (WAL).
    db.exec("BEGIN");
    try {
      return await fn(reader);
    } finally {
      db.exec("ROLLBACK");
    }
  } finally {
    db.close();
  }
}

/**
 * Creates the SQLite database at `path` if it is missing and brings it to
 * this Relay's schema, then runs `fn` in one `BEGIN IMMEDIATE` transaction
 * that commits when `fn` resolves and rolls back when it throws. Ids are
 * inserted as they are: `sqlite_sequence` follows the largest inserted id by
 * itself, and the `free_counts` triggers count the free licenses inserted.
 * A file this call created is removed again when `fn` throws.
 *
 * @throws {DatabaseError} the file cannot be created or used, or holds
 *   tables that are not Relay's.
 * @throws {DatabaseTooNewError} a newer Relay wrote it.
 */
export async function writeSqliteTables<T>(
  path: string,
  options: { now: number },
  fn: (writer: TableWriter) => Promise<T>,
): Promise<T> {
  const existed = exists(path);
  await openSqliteStore(path, { create: true, now: options.now }).close();
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path);
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec("PRAGMA foreign_keys = ON");
    db.exec("PRAGMA synchronous = FULL");
  } catch (error) {
    throw new DatabaseError(`Cannot open database "${path}": ${reason(error)}`, { cause: error });
  }
  let committed = false;
  try {
    const inserts = new Map<CopiedTable, StatementSync>();
    const writer: TableWriter = {
      count(table) {
        const row = db.prepare(`SELECT count(*) AS n FROM ${table}`).get();
        return Promise.resolve(Number(row?.n ?? 0));
      },
      insert(table, rows) {
        let insert = inserts.get(table);
        if (insert === undefined) {
          const columns = COPY_COLUMNS[table];
          insert = db.prepare(
            `INSERT INTO ${table} (${columns.join(", ")})
             VALUES (${columns.map(() => "?").join(", ")})`,
          );
          inserts.set(table, insert);
        }
        try {
          for (const row of rows) insert.run(...row.map(sqliteValue));
          return Promise.resolve();
        } catch (error) {
          return Promise.reject(asDatabaseError(error, path));
        }
      },
    };
    db.exec("BEGIN IMMEDIATE");
    try {
      const result = await fn(writer);
      db.exec("COMMIT");
      committed = true;
      return result;
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw asDatabaseError(error, path);
    }
  } finally {
    db.close();
    if (!committed && !existed) removeDatabase(path);
  }
}

/** A value as node:sqlite binds it (a Buffer as plain bytes). */
function sqliteValue(value: CopyValue): SQLInputValue {
  return value instanceof Uint8Array && value.constructor !== Uint8Array
    ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
    : value;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Removes a database file this copy created, with its `-wal` and `-shm`. */
function removeDatabase(path: string): void {
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      Deno.removeSync(file);
    } catch {
      // Already gone.
    }
  }
}
