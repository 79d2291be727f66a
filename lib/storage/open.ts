/**
 * Opening a store: the one place that picks the engine for a database
 * location: a `postgres://` or `postgresql://` URL is a PostgreSQL database,
 * anything else a SQLite file path (or `:memory:`).
 *
 * @module
 */

import { DatabaseError } from "../errors.ts";
import type { BackupResult, Inspection, Store } from "./store.ts";
import { backupSqlite } from "./sqlite/backup.ts";
import { type InspectOptions, inspectSqlite } from "./sqlite/inspect.ts";
import { openSqliteStore, type SqliteStoreOptions } from "./sqlite/sqlite_store.ts";
import type { PostgresInspection } from "./postgres/inspect.ts";
import { isPostgresUrl } from "./postgres/url.ts";

/**
 * Options of {@link openStore}: what every engine understands, and the hints
 * it may use (SQLite's pragmas and commit settings; PostgreSQL's password and
 * pool size, which SQLite ignores).
 */
export interface StoreOptions extends SqliteStoreOptions {
  /** PostgreSQL: the password, when the URL has none. */
  password?: string;
  /** PostgreSQL: most connections the store opens (default 10). */
  poolSize?: number;
}

/**
 * Opens the database at `location`, migrating it to the current schema; it is
 * created if missing unless `options.create` is false (on PostgreSQL: an
 * empty database is given Relay's tables unless `options.create` is false).
 *
 * @throws {DatabaseError} it cannot be created, opened or used, or is missing
 *   with `create: false`.
 * @throws {DatabaseTooNewError} a newer Relay (or Keygen Relay) wrote it.
 */
export function openStore(location: string, options: StoreOptions): Promise<Store> {
  if (isPostgresUrl(location)) {
    // Loaded on first use: a command on SQLite never loads the `pg` package.
    return import("./postgres/pg_store.ts").then((engine) =>
      engine.openPostgresStore(location, options)
    );
  }
  try {
    return Promise.resolve(openSqliteStore(location, options));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * The engine that holds the database at `location`: a `postgres://` or
 * `postgresql://` URL names a PostgreSQL server, anything else a SQLite file.
 * The care functions below send a server engine's database to that
 * engine's own tools.
 */
export function databaseEngine(location: string): "sqlite" | "postgres" {
  return isPostgresUrl(location) ? "postgres" : "sqlite";
}

/**
 * Writes a consistent copy of the database at `location` to the file
 * `target`, also while `relay serve` writes to it; never creates or changes
 * the database. The copy is readable by its owner only (0600) from its first
 * byte, passes SQLite's `integrity_check`, and opens with this Relay.
 *
 * @throws {DatabaseError} the database does not exist or cannot be read, or
 *   its engine backs up with its own tools (PostgreSQL: `pg_dump`).
 * @throws {UsageError} `target` is the database itself.
 * @throws {BackupError} `target` exists and is not empty (without `force`),
 *   or the copy cannot be written.
 */
export function backupDatabase(
  location: string,
  target: string,
  options: { force: boolean },
): Promise<BackupResult> {
  if (databaseEngine(location) === "postgres") {
    return Promise.reject(
      new DatabaseError(
        "Cannot back up a PostgreSQL database with relay backup; use pg_dump (or your server's own backups)",
      ),
    );
  }
  return backupSqlite(location, target, options);
}

/**
 * Reads what `relay doctor` judges of the database at `location`, without
 * changing it: no file or table is created, no migration applied, no row
 * committed. SQLite takes its write lock and releases it at once to see
 * whether writes would succeed; PostgreSQL writes the health probe's row in
 * a transaction it rolls back, and adds its server's state.
 *
 * @throws {DatabaseError} the database does not exist, is empty
 *   (PostgreSQL), or cannot be opened at all.
 * @throws {DatabaseUnavailableError} the PostgreSQL server cannot be reached.
 */
export function inspectDatabase(
  location: string,
  options: InspectOptions & { password?: string },
): Promise<Inspection | PostgresInspection> {
  if (databaseEngine(location) === "postgres") {
    return import("./postgres/inspect.ts").then((engine) =>
      engine.inspectPostgres(location, options)
    );
  }
  try {
    return Promise.resolve(inspectSqlite(location, options));
  } catch (error) {
    return Promise.reject(error);
  }
}
