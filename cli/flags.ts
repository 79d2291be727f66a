/**
 * Every flag of `relay` in one table: its syntax, the environment variables
 * that set it when the flag is absent, its default and its help text.
 *
 * Parsing (flag over env var over default), `--help` (the
 * `[$RELAY_X=default]` suffix) and the README's flag tables all follow this
 * table; `tests/cli/flags_test.ts` fails when the README disagrees with it.
 *
 * @module
 */

import {
  AUDIT_RETENTION_BOUNDS,
  CULL_INTERVAL_BOUNDS,
  DEFAULT_DATABASE,
  DEFAULT_PORT,
  type DurationBounds,
  MAX_WAIT_BOUNDS,
  TTL_BOUNDS,
} from "../lib/config.ts";
import { type Env, envSwitch, type FlagSpec } from "./flag_spec.ts";

export * from "./flag_spec.ts";

/** `--plain` of `ls` and `stat`: `NO_COLOR` and `CI` ask for plain output as well. */
const PLAIN_ENV = ["RELAY_PLAIN", "NO_COLOR", "CI"] as const;

/** `from 30s to 365d`. */
function range(bounds: DurationBounds): string {
  return `from ${bounds.min} to ${bounds.max}`;
}

/**
 * The environment variable of the PostgreSQL password (libpq's), used when
 * neither the URL nor `--database-password-file` gives one.
 */
export const PASSWORD_ENV = "PGPASSWORD";

/** The flags of each command, in the order `--help` lists them; `global` work with any command. */
export const FLAGS = {
  global: {
    database: {
      flags: "--database <url|path>",
      env: ["RELAY_DATABASE"],
      default: DEFAULT_DATABASE,
      description:
        "path of the SQLite database file, or a postgres://user@host:port/db URL of a PostgreSQL database (a URL is never taken as a path)",
    },
    databasePasswordFile: {
      flags: "--database-password-file <path>",
      env: ["RELAY_DATABASE_PASSWORD_FILE"],
      description:
        "read the PostgreSQL password from the first line of this file when the URL has none (before $PGPASSWORD)",
    },
    noAudit: {
      flags: "--no-audit",
      env: ["RELAY_NO_AUDIT"],
      description: "do not write audit log records",
    },
    verbose: {
      flags: "-v, --verbose",
      env: ["DEBUG"],
      description:
        "log level, counted as Keygen Relay counts it: -v errors (default), -vv warnings, -vvv info (a line per request), -vvvv debug",
      repeatable: true,
    },
    noColor: { flags: "--no-color", env: ["NO_COLOR"], description: "disable colors in output" },
    pragma: {
      flags: "--pragma <key=value>",
      env: [],
      description: "extra SQLite pragma, repeatable (e.g. --pragma cache_size=-20000); SQLite only",
      repeatable: true,
    },
  },
  /** Global flags of a node-locked build only (see `cli/node_lock.ts`). */
  nodeLock: {
    machineFilePath: {
      flags: "--node-locked-machine-file-path <path>",
      env: ["RELAY_NODE_LOCKED_MACHINE_FILE_PATH"],
      default: "./relay.lic",
      description: "the path to a machine file for unlocking relay",
    },
    licenseKey: {
      flags: "--node-locked-license-key <key>",
      env: ["RELAY_NODE_LOCKED_LICENSE_KEY"],
      description:
        "the license key for unlocking relay (visible in the process list: prefer --node-locked-license-key-file)",
    },
    licenseKeyFile: {
      flags: "--node-locked-license-key-file <path>",
      env: ["RELAY_NODE_LOCKED_LICENSE_KEY_FILE"],
      description: "read the license key for unlocking relay from a file",
    },
  },
  add: {
    file: {
      flags: "--file <path>",
      env: [],
      description: "license file to add; repeat it or separate paths with commas",
      required: true,
      list: true,
    },
    key: {
      flags: "--key <key>",
      env: [],
      description:
        "license key of each --file, in the same order; repeat it or separate keys with commas (visible in the process list: prefer --key-file)",
      list: true,
    },
    keyFile: {
      flags: "--key-file <path>",
      env: ["RELAY_KEY_FILE"],
      description:
        "file of license keys, one per line, paired with the --file paths in order; repeat it or separate paths with commas (recommended: keeps keys out of the process list)",
      list: true,
    },
    publicKey: {
      flags: "--public-key <key|path>",
      env: ["RELAY_PUBLIC_KEY"],
      description:
        "your Keygen account's public key (64 hex chars for Ed25519, or RSA PEM), or a file holding it",
    },
    pool: {
      flags: "--pool <name>",
      env: ["RELAY_POOL"],
      description: "pool to add the licenses to, created if missing",
    },
    seats: {
      flags: "--seats <n>",
      env: [],
      description:
        "serve each license file to up to n holders at once; n at most the maxMachines and maxUsers the file states",
    },
  },
  del: {
    license: {
      flags: "--license <id>",
      env: [],
      description: "id of a license to delete; repeat it or separate ids with commas",
      required: true,
      list: true,
    },
    force: {
      flags: "--force",
      env: [],
      description: "also delete licenses that a node is leasing right now",
    },
  },
  ls: {
    pool: {
      flags: "--pool <name>",
      env: ["RELAY_POOL"],
      description: "list only this pool's licenses",
    },
    plain: {
      flags: "--plain",
      env: PLAIN_ENV,
      description: "plain text table, one line per license",
    },
    json: { flags: "--json", env: [], description: "JSON array, for scripts" },
    expiring: {
      flags: "--expiring <duration>",
      env: [],
      description: "list only licenses that expire within this (e.g. 7d), or have expired",
    },
  },
  stat: {
    license: {
      flags: "--license <id>",
      env: [],
      description: "id of the license",
      required: true,
    },
    plain: { flags: "--plain", env: PLAIN_ENV, description: "plain text table" },
    json: { flags: "--json", env: [], description: "JSON object, for scripts" },
  },
  leases: {
    pool: {
      flags: "--pool <name>",
      env: ["RELAY_POOL"],
      description: "list only this pool's leases",
    },
    plain: {
      flags: "--plain",
      env: PLAIN_ENV,
      description: "plain text table, one line per lease",
    },
    json: { flags: "--json", env: [], description: "JSON object of pools and leases, for scripts" },
  },
  release: {
    node: {
      flags: "--node <fingerprint>",
      env: [],
      description: "end the lease of the node with this fingerprint",
    },
    user: {
      flags: "--user <email>",
      env: [],
      description: "end the seat of the user with this email (any case)",
    },
    license: { flags: "--license <id>", env: [], description: "end the lease on this license" },
    pool: {
      flags: "--pool <name>",
      env: [],
      description: "refuse unless the lease is in this pool",
    },
  },
  audit: {
    event: {
      flags: "--event <name>",
      env: [],
      description:
        "only these events, by name (e.g. license.leased); repeat it or separate names with commas",
      list: true,
    },
    license: { flags: "--license <id>", env: [], description: "only this license's events" },
    node: {
      flags: "--node <fingerprint>",
      env: [],
      description: "only this node's events",
    },
    user: {
      flags: "--user <email>",
      env: [],
      description: "only this user's events (any case)",
    },
    pool: { flags: "--pool <name>", env: [], description: "only this pool's events" },
    since: {
      flags: "--since <time>",
      env: [],
      description: "only events at or after this RFC 3339 time, or this long ago (e.g. 1h, 7d)",
    },
    until: {
      flags: "--until <time>",
      env: [],
      description: "only events at or before this RFC 3339 time, or this long ago",
    },
    limit: {
      flags: "--limit <count>",
      env: [],
      default: "100",
      description: "show the latest this many events (default 100; 0: all)",
    },
    plain: { flags: "--plain", env: PLAIN_ENV, description: "plain text table" },
    json: {
      flags: "--json",
      env: [],
      description: "JSON array (one object per line with --follow)",
    },
    csv: { flags: "--csv", env: [], description: "CSV with a header row" },
    follow: {
      flags: "--follow",
      env: [],
      description: "keep printing new events as they are written, until interrupted",
    },
  },
  serve: {
    port: {
      flags: "-p, --port <port>",
      env: ["RELAY_PORT", "PORT"],
      default: String(DEFAULT_PORT),
      description: "port to listen on",
    },
    bind: {
      flags: "-b, --bind <addr>",
      env: ["RELAY_ADDR", "BIND_ADDR"],
      default: "0.0.0.0",
      description: "address to bind",
    },
    ttl: {
      flags: "-t, --ttl <duration>",
      env: ["RELAY_LEASE_TTL"],
      default: "60s",
      description: `lease time to live after each heartbeat, ${range(TTL_BOUNDS)}`,
    },
    cullInterval: {
      flags: "--cull-interval <duration>",
      env: ["RELAY_CULL_INTERVAL"],
      default: "15s",
      description: `how often expired leases are reaped, ${range(CULL_INTERVAL_BOUNDS)}`,
    },
    strategy: {
      flags: "--strategy <strategy>",
      env: ["RELAY_STRATEGY"],
      default: "fifo",
      description: "which free license a new node gets",
    },
    noHeartbeats: {
      flags: "--no-heartbeats",
      env: ["RELAY_NO_HEARTBEATS"],
      description: "leases last until released: no extension by heartbeat, no reaping",
    },
    pool: { flags: "--pool <name>", env: ["RELAY_POOL"], description: "serve only this pool" },
    signingSecret: {
      flags: "--signing-secret <secret>",
      env: ["RELAY_SIGNING_SECRET"],
      description: "sign responses with HMAC-SHA256",
    },
    signingSecretFile: {
      flags: "--signing-secret-file <path>",
      env: ["RELAY_SIGNING_SECRET_FILE"],
      description: "read the signing secret from a file, keeping it out of the process list",
    },
    maxWait: {
      flags: "--max-wait <duration>",
      env: ["RELAY_MAX_WAIT"],
      default: "5m",
      description: `the longest ?wait= a claim may ask for, ${
        range(MAX_WAIT_BOUNDS)
      } (longer ones answer 400)`,
    },
    maxWaiters: {
      flags: "--max-waiters <count>",
      env: ["RELAY_MAX_WAITERS"],
      default: "1024",
      description: "most claims waiting for a seat at once; beyond it 410 at once (0: no waiting)",
    },
    authTokenFile: {
      flags: "--auth-token-file <path>",
      env: ["RELAY_AUTH_TOKEN_FILE"],
      description:
        "require Authorization: Bearer <token> on /v1/nodes, with the tokens of this file (one per line; re-read on SIGHUP)",
    },
    tlsCert: {
      flags: "--tls-cert <path>",
      env: ["RELAY_TLS_CERT"],
      description: "serve HTTPS with this PEM certificate chain",
    },
    tlsKey: {
      flags: "--tls-key <path>",
      env: ["RELAY_TLS_KEY"],
      description: "the PEM private key of --tls-cert",
    },
    auditRetention: {
      flags: "--audit-retention <duration>",
      env: ["RELAY_AUDIT_RETENTION"],
      description: `delete audit records older than this, e.g. 30d, ${
        range(AUDIT_RETENTION_BOUNDS)
      } (default: keep all)`,
    },
    expiryWarning: {
      flags: "--expiry-warning <duration>",
      env: ["RELAY_EXPIRY_WARNING"],
      default: "7d",
      description: "warn at start and daily about license files that expire within this",
    },
    maxConnections: {
      flags: "--max-connections <count>",
      env: ["RELAY_MAX_CONNECTIONS"],
      default: "4096",
      description: "most connections open at once; at the cap the longest idle one is closed",
    },
    idleTimeout: {
      flags: "--idle-timeout <duration>",
      env: ["RELAY_IDLE_TIMEOUT"],
      default: "60s",
      description: "close a kept-alive connection after this long without a request",
    },
    headerTimeout: {
      flags: "--header-timeout <duration>",
      env: ["RELAY_HEADER_TIMEOUT"],
      default: "10s",
      description: "close a new connection that has not sent a whole request by then",
    },
    noMetrics: {
      flags: "--no-metrics",
      env: ["RELAY_NO_METRICS"],
      description: "do not serve Prometheus metrics at GET /metrics",
    },
    ui: {
      flags: "--ui",
      env: ["RELAY_UI"],
      description: "serve a read-only status page at GET /ui",
    },
  },
  backup: {
    to: {
      flags: "--to <path>",
      env: [],
      description:
        "file to write the copy to (readable by you only); must not exist unless --force",
      required: true,
    },
    force: {
      flags: "--force",
      env: [],
      description:
        "replace an existing file (atomically: the old file stays until the copy is whole)",
    },
  },
  migrate: {
    from: {
      flags: "--from <url|path>",
      env: [],
      description:
        "the database to copy: a SQLite file or a postgres:// URL; read in one snapshot, never changed",
      required: true,
    },
    to: {
      flags: "--to <url|path>",
      env: [],
      description:
        "the database to copy into: a SQLite file (created if missing) or a postgres:// URL; must hold no pool, node, license or audit record",
      required: true,
    },
  },
  doctor: {
    expiring: {
      flags: "--expiring <duration>",
      env: [],
      default: "7d",
      description: "warn about licenses that expire within this (e.g. 14d), or have expired",
    },
    json: { flags: "--json", env: [], description: "JSON object, for scripts" },
  },
} as const satisfies Record<string, Record<string, FlagSpec>>;

/**
 * Whether tables use the plain layout: `--plain`, one of its env vars, or
 * standard output that is not a terminal.
 */
export function wantsPlain(
  plainFlag: boolean | undefined,
  io: { env: Env; stdoutIsTerminal: boolean },
): boolean {
  return plainFlag === true || envSwitch(FLAGS.ls.plain, io.env) || !io.stdoutIsTerminal;
}
