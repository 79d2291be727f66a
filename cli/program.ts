/**
 * The `relay` command line: global options and subcommands.
 *
 * `run(args, io)` is the whole program; `main.ts` only wires it to the
 * process, so tests can run it in-process with captured output. Flags, their
 * env vars and defaults are in `cli/flags.ts`; what commands share is in
 * `cli/context.ts`.
 *
 * @module
 */

import { Command } from "commander";
import { verbosityOf } from "../lib/logger.ts";
import { addCommand } from "./add.ts";
import { auditCommand } from "./audit.ts";
import { backupCommand } from "./backup.ts";
import { completeCommand, completionCommand } from "./completion.ts";
import { createContext, type GlobalOptions, type Io } from "./context.ts";
import { delCommand } from "./del.ts";
import { doctorCommand } from "./doctor.ts";
import { reportError } from "./errors.ts";
import { fingerprintCommand } from "./fingerprint.ts";
import { type Env, envSwitch, flagOption, FLAGS, PASSWORD_ENV } from "./flags.ts";
import { leasesCommand } from "./leases.ts";
import { lsCommand } from "./ls.ts";
import { addNodeLockOptions, type NodeLockOptions, unlockBeforeCommand } from "./node_lock.ts";
import { migrateCommand } from "./migrate.ts";
import { NODE_LOCK } from "./node_lock_build.ts";
import { UserPaths } from "./paths.ts";
import { releaseCommand } from "./release.ts";
import { Secrets } from "./secrets.ts";
import { serveCommand } from "./serve.ts";
import { statCommand } from "./stat.ts";
import { helpVersion, versionCommand, versionText } from "./version.ts";
import type { NodeLock } from "../lib/node_lock.ts";

export type { CommandContext, Io } from "./context.ts";

/**
 * Runs the `relay` program with `args` (without the program name) and returns
 * the exit code. `nodeLock` is what the build is node-locked to: the
 * embedded one unless a test gives another.
 */
export async function run(
  args: string[],
  io: Io,
  { nodeLock = NODE_LOCK }: { nodeLock?: NodeLock } = {},
): Promise<number> {
  const paths = new UserPaths(io.env);
  const secrets = secretsOf(args, io.env);
  // Commander's own messages quote values at times: mask them as well.
  const writeErr = (text: string) => io.stderr(secrets.mask(text));
  const program = new Command("relay")
    .description(
      "Relay: an offline-first, on-premise floating-license server for Keygen license files" +
        helpVersion(nodeLock),
    )
    .version(versionText(nodeLock), "--version", "print the relay version")
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr })
    .showHelpAfterError("(run with --help for usage)");
  const { database, databasePasswordFile, noAudit, verbose, noColor, pragma } = FLAGS.global;
  program
    .addOption(flagOption(database))
    .addOption(flagOption(databasePasswordFile))
    .addOption(flagOption(noAudit))
    .addOption(
      flagOption(verbose).default(0).argParser((_value: string, previous: number) => previous + 1),
    )
    .addOption(flagOption(noColor))
    .addOption(
      flagOption(pragma).argParser((value: string, previous: string[] = []) => [
        ...previous,
        value,
      ]),
    );
  addNodeLockOptions(program, nodeLock);

  const context = createContext(io, {
    globalOptions: () => program.opts<GlobalOptions>(),
    paths,
    nodeLock,
    secrets,
  });
  // A node-locked build unlocks itself before a command runs (cli/node_lock.ts).
  program.hook("preAction", (_program, command) =>
    unlockBeforeCommand(context, {
      command: command.name(),
      lock: nodeLock,
      flags: program.opts<NodeLockOptions>(),
    }));
  for (
    const command of [
      addCommand,
      delCommand,
      lsCommand,
      statCommand,
      leasesCommand,
      releaseCommand,
      auditCommand,
      serveCommand,
      versionCommand,
      backupCommand,
      doctorCommand,
      migrateCommand,
      fingerprintCommand,
    ]
  ) {
    program.addCommand(
      command(context)
        .exitOverride()
        .configureOutput({ writeOut: io.stdout, writeErr })
        .showHelpAfterError("(run with --help for usage)"),
    );
  }
  // Shell completion, and the hidden helper its scripts call: after the other
  // commands, though the scripts are generated from the whole tree anyway.
  for (const [command, hidden] of [[completionCommand, false], [completeCommand, true]] as const) {
    program.addCommand(
      command(context)
        .exitOverride()
        .configureOutput({ writeOut: io.stdout, writeErr })
        .showHelpAfterError("(run with --help for usage)"),
      { hidden },
    );
  }

  if (args.length === 0) {
    io.stdout(program.helpInformation());
    return 0;
  }
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (error) {
    const verbosity = verbosityOf(countOf(program), envSwitch(verbose, io.env));
    return reportError(error, { stderr: io.stderr, verbosity, paths, secrets });
  }
}

/**
 * The secrets on the command line and in the environment, known before
 * anything is parsed: every PostgreSQL URL (`--database`, `RELAY_DATABASE`,
 * `relay migrate --from/--to`) and `PGPASSWORD`.
 */
function secretsOf(args: readonly string[], env: Env): Secrets {
  const secrets = new Secrets();
  for (const value of [...args, env[FLAGS.global.database.env[0]] ?? ""]) {
    // `--database=postgres://…` as well as `--database postgres://…`.
    const url = /postgres(?:ql)?:\/\/.*/i.exec(value)?.[0];
    if (url !== undefined) secrets.addDatabase(url);
  }
  secrets.add(env[PASSWORD_ENV]);
  return secrets;
}

/** The count of `-v` parsed so far (none when parsing failed before it). */
function countOf(program: Command): number {
  const count = program.opts().verbose;
  return typeof count === "number" ? count : 0;
}
