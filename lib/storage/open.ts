/**
 * Opening a store: the one place that picks the engine for a database
 * location. Today every location is a SQLite file path (or `:memory:`).
 *
 * @module
 */

import type { Store } from "./store.ts";
import { openSqliteStore, type SqliteStoreOptions } from "./sqlite/sqlite_store.ts";

/** Options of {@link openStore}: what every engine understands, and the hints it may use. */
export type StoreOptions = SqliteStoreOptions;

/**
 * Opens the database at `location`, migrating it to the current schema; it is
 * created if missing unless `options.create` is false.
 *
 * @throws {DatabaseError} it cannot be created, opened or used, or is missing
 *   with `create: false`.
 * @throws {DatabaseTooNewError} a newer Relay (or Keygen Relay) wrote it.
 */
export function openStore(location: string, options: StoreOptions): Promise<Store> {
  try {
    return Promise.resolve(openSqliteStore(location, options));
  } catch (error) {
    return Promise.reject(error);
  }
}
