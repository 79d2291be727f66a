/**
 * What every command gets: the process edges (`Io`), the global settings
 * parsed once, a logger and the store, and the user's paths resolved.
 *
 * Commands import this module, never `program.ts`, so the program can import
 * every command without an import cycle.
 *
 * @module
 */

import { type GlobalConfig, parsePragma } from "../lib/config.ts";
import { UsageError } from "../lib/errors.ts";
import { createLogger, type Logger, verbosityOf } from "../lib/logger.ts";
import type { HostReader, NodeLock } from "../lib/node_lock.ts";
import { openStore, type StoreOptions } from "../lib/storage/open.ts";
import type { Store } from "../lib/storage/store.ts";
import { unixSeconds } from "../lib/time.ts";
import {
  databaseLocation,
  databaseName,
  databasePassword,
  isPostgresUrl,
  passwordSource,
} from "./database.ts";
import { type Env, envSwitch, FLAGS, flagValue } from "./flags.ts";
import type { UserPaths } from "./paths.ts";
import type { Secrets } from "./secrets.ts";

/** What the program may touch of the process: output, environment, clock. */
export interface Io {
  /** Writes to standard output, as is. */
  stdout: (text: string) => void;
  /** Writes to standard error, as is. */
  stderr: (text: string) => void;
  /** The environment variables. */
  env: Readonly<Record<string, string | undefined>>;
  /** Whether standard output is a terminal (tables are boxed, not plain). */
  stdoutIsTerminal: boolean;
  /** Whether standard error is a terminal (progress bars are drawn). */
  stderrIsTerminal: boolean;
  /** The clock. */
  now: () => Date;
  /**
   * Stops `relay serve` when aborted, as SIGTERM/SIGINT/SIGHUP do; lets tests run the
   * server in-process. Absent: only the process's signals stop it.
   */
  shutdown?: AbortSignal;
  /**
   * This host's fingerprint, platform, hostname and IP for node-locking;
   * absent: read from the system (`cli/host.ts`). Lets tests be another host.
   */
  host?: HostReader;
}

/** What each subcommand gets: the process edges and the global settings. */
export interface CommandContext {
  io: Io;
  /** What this build is node-locked to (`cli/node_lock_build.ts`); all empty when it is not. */
  nodeLock: NodeLock;
  /** The global options of this invocation, with env-var defaults applied. */
  config(): GlobalConfig;
  /** A logger at the configured verbosity: JSON lines unless the stream is a terminal. */
  logger(stream: "stdout" | "stderr"): Logger;
  /** The clock, read now, in unix seconds. */
  now(): number;
  /**
   * Opens the configured database, with `extra` options; the caller closes it.
   * The file must exist unless `extra.create` is true: only `add` and `serve`
   * create a database, so a mistyped `--database` given to a command that
   * reads or deletes is an error naming the path, not a new empty file.
   */
  openStore(
    extra?: Pick<StoreOptions, "create" | "groupCommit" | "backgroundCheckpoints">,
  ): Promise<Store>;
  /**
   * Opens the database at `location` (a resolved path or a URL, e.g. of
   * `relay migrate`) with this run's audit, pragmas (SQLite only) and
   * password source; the caller closes it.
   */
  openStoreAt(location: string, options: Pick<StoreOptions, "create">): Promise<Store>;
  /**
   * The password for the PostgreSQL database at `location` (undefined for
   * SQLite, or when its URL holds one); see `cli/database.ts`.
   */
  databasePassword(location: string): Promise<string | undefined>;
  /** The configured database as output and logs name it: a URL without its password. */
  databaseName(): string;
  /** What must never be printed (`cli/secrets.ts`); error messages are masked with it. */
  secrets: Secrets;
  /**
   * A path the user gave, resolved against the folder they ran the command in
   * (see `cli/paths.ts`); error messages still quote it as typed.
   */
  path(typed: string): string;
}

/** The global options as commander parses them (`program.opts()`). */
export interface GlobalOptions {
  database?: string;
  databasePasswordFile?: string;
  audit: boolean;
  verbose: number;
  pragma?: string[];
}

/**
 * The context of one run. `options` is read on first use of `config()`, once
 * commander has parsed the command line.
 */
export function createContext(
  io: Io,
  options: {
    globalOptions: () => GlobalOptions;
    paths: UserPaths;
    nodeLock: NodeLock;
    secrets: Secrets;
  },
): CommandContext {
  let config: GlobalConfig | undefined;
  const context: CommandContext = {
    io,
    nodeLock: options.nodeLock,
    config() {
      config ??= globalConfig(options.globalOptions(), io.env, options.paths);
      return config;
    },
    logger(stream) {
      return createLogger({
        verbosity: context.config().verbosity,
        write: stream === "stdout" ? io.stdout : io.stderr,
        json: !(stream === "stdout" ? io.stdoutIsTerminal : io.stderrIsTerminal),
        now: io.now,
      });
    },
    now() {
      return unixSeconds(io.now());
    },
    openStore(extra = {}) {
      return context.openStoreAt(context.config().database, { create: false, ...extra });
    },
    async openStoreAt(location, extra) {
      const { audit, pragmas } = context.config();
      const password = await context.databasePassword(location);
      return openStore(location, {
        ...extra,
        audit,
        ...(isPostgresUrl(location) ? { password } : { pragmas }),
        now: context.now(),
      });
    },
    async databasePassword(location) {
      const password = await databasePassword(location, context.config().passwordSource);
      options.secrets.add(password);
      return password;
    },
    databaseName() {
      return databaseName(context.config().database);
    },
    secrets: options.secrets,
    path(typed) {
      return options.paths.resolve(typed);
    },
  };
  return context;
}

/**
 * Global flags over env vars over defaults.
 *
 * @throws {UsageError} `--pragma` with a PostgreSQL database, or an empty
 *   `--database-password-file`.
 */
function globalConfig(options: GlobalOptions, env: Env, paths: UserPaths): GlobalConfig {
  const { database, noAudit, verbose } = FLAGS.global;
  // Never undefined: the flag has a default.
  const typed = flagValue(database, options.database, env)!;
  const location = databaseLocation(typed, paths);
  const pragmas = Object.fromEntries((options.pragma ?? []).map(parsePragma));
  if (isPostgresUrl(location) && Object.keys(pragmas).length > 0) {
    throw new UsageError("--pragma applies to SQLite only, not to a PostgreSQL database");
  }
  return {
    database: location,
    passwordSource: passwordSource(options.databasePasswordFile, { env, paths }),
    audit: options.audit && !envSwitch(noAudit, env),
    // `-v` given wins over DEBUG, as in Keygen Relay (`-v DEBUG=1` logs errors).
    verbosity: verbosityOf(options.verbose, envSwitch(verbose, env)),
    pragmas,
  };
}
