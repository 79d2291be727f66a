/**
 * Typed configuration shared by every command, and the parsers for the values
 * that flags and environment variables carry. The CLI fills these objects once
 * (`cli/context.ts`, `cli/serve_config.ts`, from the flag table in
 * `cli/flags.ts`); nothing below it reads flags or the environment.
 *
 * @module
 */

import { UsageError } from "./errors.ts";

/**
 * Where the PostgreSQL password comes from when the database URL holds none:
 * a file whose first line it is (`--database-password-file`, path resolved),
 * or the value of `PGPASSWORD`. A password in the URL wins over both, and the
 * file over `PGPASSWORD`.
 */
export type PasswordSource =
  | { readonly kind: "file"; readonly path: string; readonly typed: string }
  | { readonly kind: "env"; readonly password: string };

/** Settings every command has. */
export interface GlobalConfig {
  /**
   * Path of the SQLite database file (the CLI resolved a relative one), or
   * `:memory:`, or a `postgres://` URL (as given, never resolved as a path; it
   * may hold the password: name it with `redactUrl` of
   * `lib/storage/postgres/connect.ts`).
   */
  database: string;
  /** Where a PostgreSQL password comes from when the URL has none; null: nowhere. */
  passwordSource: PasswordSource | null;
  /** Whether audit rows are written. */
  audit: boolean;
  /** The count of `-v` (`lib/logger.ts` `VERBOSITY`): 1 errors, 2 warnings, 3 info, 4 debug. */
  verbosity: number;
  /** Extra SQLite pragmas, `key -> value` (none for PostgreSQL). */
  pragmas: Record<string, string>;
}

/** Settings of `relay serve`. */
export interface ServeConfig {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Address to bind. */
  bind: string;
  /** Lease time to live after each heartbeat, in whole seconds ({@link TTL_BOUNDS}). */
  ttlSeconds: number;
  /** Time between reaper runs, in milliseconds ({@link CULL_INTERVAL_BOUNDS}). */
  cullIntervalMs: number;
  strategy: "fifo" | "lifo" | "rand";
  /** Whether repeated claims extend leases and silent nodes are reaped. */
  heartbeats: boolean;
  /** The only pool served, or null to serve every pool by `Relay-Pool`. */
  pool: string | null;
  /** Secret for `Relay-Signature`, or null for unsigned responses. */
  signingSecret: string | null;
  /** PEM certificate chain and private key for HTTPS, or null for plain HTTP. */
  tls: { cert: string; key: string } | null;
  /**
   * How long audit records are kept, in whole seconds ({@link AUDIT_RETENTION_BOUNDS}); null
   * keeps them forever.
   */
  auditRetentionSeconds: number | null;
  /** Warn about licenses that stop being valid within this many seconds. */
  expiryWarningSeconds: number;
  /** Connection handling (`server/listener.ts`). */
  connections: ConnectionLimits;
  /**
   * `--auth-token-file`: the file (resolved) and the tokens read from it at
   * start; null: the lease routes are open.
   */
  auth: { file: string; tokens: string[] } | null;
  /** Claims waiting for a seat (`?wait=`). */
  waiting: {
    /** The longest wait a claim may ask for, in whole seconds ({@link MAX_WAIT_BOUNDS}). */
    maxWaitSeconds: number;
    /** Most claims waiting at once; 0: `wait` is refused. */
    maxWaiters: number;
  };
  /** Whether `GET /metrics` is served (`--no-metrics` turns it off). */
  metrics: boolean;
  /** Whether the status page `GET /ui` is served (`--ui`). */
  ui: boolean;
}

/** The cap and timeouts that keep floods of connections from exhausting the server. */
export interface ConnectionLimits {
  /** Most connections open at once. */
  maxConnections: number;
  /** A kept-alive connection with no request for this long is closed, in milliseconds. */
  idleTimeoutMs: number;
  /** A new connection without a complete request after this long is closed, in milliseconds. */
  headerTimeoutMs: number;
}

/** The port of the reference Relay, and ours. */
export const DEFAULT_PORT = 6349;

/** The shortest lease time to live `relay serve` accepts, in seconds. */
export const MIN_TTL_SECONDS = 30;

/** The database file used when neither `--database` nor `RELAY_DATABASE` is given. */
export const DEFAULT_DATABASE = "./relay.sqlite";

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|d|h|m|s)/y;
const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** The range a duration setting must fall in, both ends included, as written and in ms. */
export interface DurationBounds {
  readonly min: string;
  readonly max: string;
  readonly minMs: number;
  readonly maxMs: number;
}

/**
 * Lease time to live: at least the reference Relay's 30s; at most a year, so
 * that every `expires_at` a client reads is a plain integer of unix seconds.
 */
export const TTL_BOUNDS: DurationBounds = durationBounds(`${MIN_TTL_SECONDS}s`, "365d");

/** Reaper interval: at most 24h, since timers beyond 2^31 ms overflow and fire at once. */
export const CULL_INTERVAL_BOUNDS: DurationBounds = durationBounds("100ms", "24h");

/** Audit retention: at least a minute, at most a hundred years. */
export const AUDIT_RETENTION_BOUNDS: DurationBounds = durationBounds("1m", "36500d");

/** `--max-wait`: how long a claim may ask to wait for a seat. */
export const MAX_WAIT_BOUNDS: DurationBounds = durationBounds("1s", "1h");

/**
 * Parses a duration like `30s`, `1m`, `1h30m` or `1.5h` (Go's notation, as the
 * reference Relay accepts), or with days (`30d`), into whole milliseconds.
 *
 * The result is not bounded: absurd input (`99999999999999999999h`) gives a
 * huge number or `Infinity`. Each setting checks its own range with
 * {@link withinBounds}.
 *
 * @throws {UsageError} the text is not a duration.
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  let total = 0;
  let index = 0;
  DURATION_PART.lastIndex = 0;
  while (index < trimmed.length) {
    DURATION_PART.lastIndex = index;
    const match = DURATION_PART.exec(trimmed);
    if (!match) break;
    total += Number(match[1]) * UNIT_MS[match[2]];
    index = DURATION_PART.lastIndex;
  }
  if (trimmed === "" || index !== trimmed.length) {
    throw new UsageError(
      `Invalid duration "${text}": use a number with a unit, like 30s, 1m, 1h or 1h30m`,
    );
  }
  return Math.round(total);
}

/** Whether `ms` lies in `bounds`, ends included (never for NaN or Infinity). */
export function withinBounds(ms: number, bounds: DurationBounds): boolean {
  return ms >= bounds.minMs && ms <= bounds.maxMs;
}

function durationBounds(min: string, max: string): DurationBounds {
  return { min, max, minMs: parseDuration(min), maxMs: parseDuration(max) };
}

/** Reads an environment flag: `1`, `true`, `yes` and `on` (any case) are true. */
export function parseEnvFlag(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on)$/i.test(value.trim());
}

/**
 * Parses one `--pragma key=value`. Keys and values are limited to plain
 * identifiers and numbers, since they are spliced into a `PRAGMA` statement.
 *
 * @throws {UsageError} the text is not `key=value` of that form.
 */
export function parsePragma(text: string): [string, string] {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)=(-?[A-Za-z0-9_.]+)$/.exec(text.trim());
  if (!match) {
    throw new UsageError(
      `Invalid pragma "${text}": expected key=value, e.g. --pragma cache_size=-20000`,
    );
  }
  return [match[1], match[2]];
}

/**
 * Parses a TCP port (0 to 65535).
 *
 * @throws {UsageError} the text is not such a port.
 */
export function parsePort(text: string): number {
  const port = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || port > 65535) {
    throw new UsageError(`Invalid port "${text}": use a number from 0 to 65535`);
  }
  return port;
}
