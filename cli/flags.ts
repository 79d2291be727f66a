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

import { DEFAULT_DATABASE } from "../lib/config.ts";
import { type Env, envSwitch, type FlagSpec } from "./flag_spec.ts";
import { SERVE_FLAGS } from "./serve_flags.ts";

export * from "./flag_spec.ts";

/** `--plain` of `ls` and `stat`: `NO_COLOR` and `CI` ask for plain output as well. */
const PLAIN_ENV = ["RELAY_PLAIN", "NO_COLOR", "CI"] as const;

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
  serve: SERVE_FLAGS,
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
