/**
 * Connecting to PostgreSQL: the one place that builds a client from a
 * `postgres://` URL, with the settings every Relay connection shares.
 *
 * Uses the npm package `postgres` (porsager/postgres: pure JavaScript, a
 * pool of connections that reconnects by itself, prepared statements). The
 * password comes from the URL or from the caller (the CLI reads
 * `--database-password-file` or `PGPASSWORD`); it is never part of a message:
 * use {@link redactUrl} to name a database.
 *
 * @module
 */

import postgres from "postgres";
import { UsageError } from "../../errors.ts";

/** A pool of connections to one database (the `postgres` package's `Sql`). */
export type Sql = postgres.Sql<Record<string, never>>;

/**
 * The connection of one open transaction (`sql.begin((tx) => …)`): the
 * statements of a `Tx` run on it.
 */
export type TxSql = postgres.TransactionSql<Record<string, never>>;

/** Whether `location` names a PostgreSQL database (`postgres://` or `postgresql://`). */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

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
 * `url` with its password replaced by `***`, for messages and logs; an
 * unparsable URL is named by its scheme only.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    for (const key of [...parsed.searchParams.keys()]) {
      if (key.toLowerCase() === "password") parsed.searchParams.set(key, "***");
    }
    return parsed.href;
  } catch {
    return `${url.split(":")[0]}://…`;
  }
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
  return postgres(url, {
    max: options.max ?? 10,
    connect_timeout: options.connectTimeoutSeconds ?? 5,
    idle_timeout: 60,
    ...(options.password === undefined ? {} : { password: options.password }),
    onnotice: () => {},
    connection: { application_name: options.applicationName ?? "relay" },
    types: {
      bigint: {
        to: 20,
        from: [20],
        parse: (value: string) => Number(value),
        serialize: (value: number) => String(value),
      },
    },
  }) as unknown as Sql;
}
