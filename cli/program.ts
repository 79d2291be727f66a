/**
 * The `relay` command line: global options, subcommands, and the one place
 * where flags and environment variables become typed configuration.
 *
 * `run(args, io)` is the whole program; `main.ts` only wires it to the
 * process, so tests can run it in-process with captured output.
 *
 * @module
 */

import { Command, Option } from "commander";
import { DEFAULT_DATABASE, type GlobalConfig, parseEnvFlag, parsePragma } from "../lib/config.ts";
import { createLogger, type Logger } from "../lib/logger.ts";
import { openStore, type StoreOptions } from "../lib/storage/open.ts";
import type { Store } from "../lib/storage/store.ts";
import { unixSeconds } from "../lib/time.ts";
import { addCommand } from "./add.ts";
import { delCommand } from "./del.ts";
import { reportError } from "./errors.ts";
import { lsCommand } from "./ls.ts";
import { serveCommand } from "./serve.ts";
import { statCommand } from "./stat.ts";
import { VERSION, versionCommand } from "./version.ts";

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
   * Stops `relay serve` when aborted, as SIGINT/SIGTERM do; lets tests run the
   * server in-process. Absent: only the process's signals stop it.
   */
  shutdown?: AbortSignal;
}

/** What each subcommand gets: the process edges and the global settings. */
export interface CommandContext {
  io: Io;
  /** The global options of this invocation, with env-var defaults applied. */
  config(): GlobalConfig;
  /** A logger at the configured verbosity: JSON lines unless the stream is a terminal. */
  logger(stream: "stdout" | "stderr"): Logger;
  /** The clock, read now, in unix seconds. */
  now(): number;
  /** Opens the configured database, with `extra` options; the caller closes it. */
  openStore(extra?: Pick<StoreOptions, "groupCommit" | "backgroundCheckpoints">): Promise<Store>;
}

/**
 * Runs the `relay` program with `args` (without the program name) and returns
 * the exit code.
 */
export async function run(args: string[], io: Io): Promise<number> {
  const program = createProgram(io);
  if (args.length === 0) {
    io.stdout(program.helpInformation());
    return 0;
  }
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (error) {
    return reportError(error, io.stderr, verbosityOf(program));
  }
}

function createProgram(io: Io): Command {
  const program = new Command("relay")
    .description(
      "Relay: an offline-first, on-premise floating-license server for Keygen license files",
    )
    .version(VERSION, "--version", "print the relay version")
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError("(run with --help for usage)")
    .option(
      "--database <path>",
      `path of the SQLite database file [$RELAY_DATABASE=${DEFAULT_DATABASE}]`,
    )
    .option("--no-audit", "do not write audit log records [$RELAY_NO_AUDIT=1]")
    .option(
      "-v, --verbose",
      "more detail in the logs (stdout for serve, stderr otherwise); -vv for debug [$DEBUG=1]",
      (_value: string, previous: number) => previous + 1,
      0,
    )
    .addOption(new Option("--no-color", "disable colors in output [$NO_COLOR=1]"))
    .option(
      "--pragma <key=value>",
      "extra SQLite pragma, repeatable (e.g. --pragma cache_size=-20000)",
      (value: string, previous: string[] = []) => [...previous, value],
    );

  let config: GlobalConfig | undefined;
  const context: CommandContext = {
    io,
    config() {
      config ??= globalConfig(program.opts(), io.env);
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
      const { database, audit, pragmas } = context.config();
      return openStore(database, { ...extra, audit, pragmas, now: context.now() });
    },
  };

  for (
    const command of [addCommand, delCommand, lsCommand, statCommand, serveCommand, versionCommand]
  ) {
    program.addCommand(
      command(context)
        .exitOverride()
        .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
        .showHelpAfterError("(run with --help for usage)"),
    );
  }
  return program;
}

interface GlobalOptions {
  database?: string;
  audit: boolean;
  verbose: number;
  pragma?: string[];
}

/** Global flags over env vars over defaults. */
function globalConfig(
  options: GlobalOptions,
  env: Readonly<Record<string, string | undefined>>,
): GlobalConfig {
  return {
    database: options.database ?? envValue(env, "RELAY_DATABASE") ?? DEFAULT_DATABASE,
    audit: options.audit && !parseEnvFlag(env.RELAY_NO_AUDIT),
    verbosity: Math.max(options.verbose, parseEnvFlag(env.DEBUG) ? 2 : 0),
    pragmas: Object.fromEntries((options.pragma ?? []).map(parsePragma)),
  };
}

function verbosityOf(program: Command): number {
  const verbose = program.opts().verbose;
  return typeof verbose === "number" ? verbose : 0;
}

/** The first of the named environment variables that is set and not empty. */
export function envValue(
  env: Readonly<Record<string, string | undefined>>,
  ...names: string[]
): string | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value !== "") return value;
  }
  return undefined;
}

/** Splits repeated and comma-separated flag values into one list. */
export function collectList(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(",").map((item) => item.trim()).filter(Boolean)];
}

/** Whether tables should use the plain layout: asked for, or not a terminal. */
export function wantsPlain(plainFlag: boolean | undefined, io: Io): boolean {
  return plainFlag === true || parseEnvFlag(io.env.RELAY_PLAIN) ||
    parseEnvFlag(io.env.NO_COLOR) || parseEnvFlag(io.env.CI) || !io.stdoutIsTerminal;
}
