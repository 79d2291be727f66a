/**
 * Builds the single-file `relay` binaries with `deno compile`, one per
 * target, into `dist/`, with the same permissions as the `relay` task.
 *
 * ```sh
 * deno task compile                 # all five targets
 * deno task compile --target x86_64-unknown-linux-gnu
 * deno task compile --dry-run       # print the steps only
 * deno task compile --help
 * BUILD_NODE_LOCKED_PUBLIC_KEY=… BUILD_NODE_LOCKED_FINGERPRINT=… deno task compile   # node-locked
 * ```
 *
 * Each build first writes `cli/node_lock_build.ts` from the
 * `BUILD_NODE_LOCKED_*` variables (`scripts/lock.ts`; unlocked without
 * them), compiles, then puts back the module as it was, also when the
 * compile fails, so a locked state is never left in the checkout.
 *
 * `deno compile` downloads the runtime for each target (`denort`) once, so the
 * build machine needs access to Deno's download host; the binaries it makes
 * need nothing at run time.
 *
 * @module
 */

import {
  CONSOLE,
  oneOf,
  type Parsed,
  parseScriptArgs,
  scriptCommand,
  type ScriptOutput,
} from "./command_line.ts";
import {
  describeLock,
  LOCK_MODULE,
  LOCK_MODULE_PATH,
  nodeLockFromEnv,
  renderLockModule,
} from "./lock.ts";
import { RELAY_PERMISSIONS } from "./permissions.ts";
import type { NodeLock } from "../lib/node_lock.ts";

/** Targets `deno compile` supports, with the file name of each binary. */
export const TARGETS: Readonly<Record<string, string>> = {
  "x86_64-unknown-linux-gnu": "relay-linux-x64",
  "aarch64-unknown-linux-gnu": "relay-linux-arm64",
  "x86_64-apple-darwin": "relay-macos-x64",
  "aarch64-apple-darwin": "relay-macos-arm64",
  "x86_64-pc-windows-msvc": "relay-windows-x64.exe",
};

/**
 * Modules that run as workers: `deno compile` only embeds what `main.ts`
 * imports, so each must be named with `--include`.
 */
export const WORKER_MODULES: readonly string[] = ["lib/storage/sqlite/checkpoint_worker.ts"];

/** The `deno` arguments that build `target` into `outDir`. */
export function compileArgs(target: string, outDir = "dist"): string[] {
  const name = TARGETS[target];
  if (!name) {
    throw new Error(`Unknown target "${target}"; one of ${Object.keys(TARGETS).join(", ")}`);
  }
  return [
    "compile",
    ...RELAY_PERMISSIONS,
    "--target",
    target,
    "--output",
    `${outDir}/${name}`,
    ...WORKER_MODULES.flatMap((module) => ["--include", module]),
    "main.ts",
  ];
}

/** What the compile script was asked to build. */
export interface CompileOptions {
  /** The targets to build, in order. */
  targets: string[];
  /** Print the commands without running them. */
  dryRun: boolean;
}

/** Parses the compile script's command line; prints help or the error through `output`. */
export function parseCompileArgs(
  args: string[],
  output: ScriptOutput = CONSOLE,
): Parsed<CompileOptions> {
  const targets = Object.keys(TARGETS);
  const command = scriptCommand(
    "deno task compile",
    "Builds the single-file relay binaries with deno compile into dist/.",
    output,
  )
    .option(
      "--target <target>",
      `build only this target: ${targets.join(", ")} (default: all)`,
      oneOf(targets, "target"),
    )
    .option("--dry-run", "print the commands only");
  return parseScriptArgs(command, args, (values) => ({
    targets: values.target === undefined ? targets : [values.target as string],
    dryRun: values.dryRun === true,
  }));
}

/** The lines `--dry-run` prints, in order: write the lock module, compile each target, restore it. */
export function compilePlan(lock: NodeLock, targets: readonly string[]): string[] {
  return [
    `write ${LOCK_MODULE}: ${describeLock(lock)}`,
    ...targets.map((target) => `deno ${compileArgs(target).join(" ")}`),
    `restore ${LOCK_MODULE}`,
  ];
}

async function main(args: string[]): Promise<number> {
  const parsed = parseCompileArgs(args);
  if (parsed.kind === "exit") return parsed.code;
  const { targets, dryRun } = parsed.options;
  let lock: NodeLock;
  try {
    lock = await nodeLockFromEnv(Deno.env.toObject());
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    return 1;
  }
  const [write, ...rest] = compilePlan(lock, targets);
  const restore = rest.pop()!;
  console.log(write);
  if (dryRun) {
    for (const line of [...rest, restore]) console.log(line);
    return 0;
  }
  const original = await Deno.readTextFile(LOCK_MODULE_PATH);
  // Ctrl-C ends the process without running `finally`: put the module back first.
  const interrupted = () => {
    Deno.writeTextFileSync(LOCK_MODULE_PATH, original);
    console.log(restore);
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", interrupted);
  await Deno.writeTextFile(LOCK_MODULE_PATH, renderLockModule(lock));
  try {
    for (const target of targets) {
      const denoArgs = compileArgs(target);
      console.log(`deno ${denoArgs.join(" ")}`);
      const { code } = await new Deno.Command(Deno.execPath(), { args: denoArgs }).spawn().status;
      if (code !== 0) {
        console.error(`error: deno compile failed for ${target} (exit ${code})`);
        return code;
      }
    }
    return 0;
  } finally {
    Deno.removeSignalListener("SIGINT", interrupted);
    await Deno.writeTextFile(LOCK_MODULE_PATH, original);
    console.log(restore);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
