/**
 * Connecting to PostgreSQL: the one place that builds a client from a
 * `postgres://` URL, with the settings every Relay connection shares.
 *
 * Uses the npm package `pg` (node-postgres, through `./client.ts`: a pool
 * of connections that replaces a failed one by itself, prepared statements). The
 * password comes from the URL or from the caller (the CLI reads
 * `--database-password-file` or `PGPASSWORD`); it is never part of a message:
 * use {@link redactUrl} to name a database.
 *
 * @module
 */

import { UsageError } from "../../errors.ts";
import { createPool, type Sql } from "./client.ts";
import { isPostgresUrl, redactUrl } from "./url.ts";

export type { Sql, TransactionSql, TxSql } from "./client.ts";
export { isPostgresUrl, redactUrl } from "./url.ts";

/** Options of {@link connectPostgres}. */
export interface ConnectOptions {
  /** The password, when the URL has none (from a file or `PGPASSWORD`). */
  password?: string;
  /** Most connections the pool opens (default 10). */
  max?: number;
  /** Seconds to wait for a connection before the call fails (default 5). */
  connectTimeoutSeconds?: number;
  /** Shown in `pg_stat_activity.application_name` (default `relay`). */
  applicationName?: string;
}

/**
 * A pool of connections to the database at `url`. Nothing connects until the
 * first query. 64-bit integers (`BIGINT`, `count(*)`) are read as numbers:
 * Relay's ids and unix times fit in 2^53.
 *
 * @throws {UsageError} `url` is not a valid PostgreSQL URL.
 */
export function connectPostgres(url: string, options: ConnectOptions = {}): Sql {
  if (!isPostgresUrl(url)) {
    throw new UsageError(`Not a PostgreSQL URL: ${redactUrl(url)}`);
  }
  try {
    new URL(url);
  } catch {
    throw new UsageError(`Invalid PostgreSQL URL: ${redactUrl(url)}`);
  }
  return createPool({
    connectionString: url,
    password: options.password,
    max: options.max ?? 10,
    connectTimeoutMs: (options.connectTimeoutSeconds ?? 5) * 1000,
    applicationName: options.applicationName ?? "relay",
  });
}
