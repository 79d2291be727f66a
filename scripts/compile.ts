/**
 * Builds the single-file `relay` binaries with `deno compile`, one per
 * target, into `dist/`, with the same permissions as the `relay` task.
 *
 * ```sh
 * deno task compile                 # all five targets
 * deno task compile --target x86_64-unknown-linux-gnu
 * deno task compile --dry-run       # print the commands only
 * deno task compile --help
 * ```
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
import { RELAY_PERMISSIONS } from "./permissions.ts";

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

async function main(args: string[]): Promise<number> {
  const parsed = parseCompileArgs(args);
  if (parsed.kind === "exit") return parsed.code;
  const { targets, dryRun } = parsed.options;
  for (const target of targets) {
    const denoArgs = compileArgs(target);
    console.log(`deno ${denoArgs.join(" ")}`);
    if (dryRun) continue;
    const { code } = await new Deno.Command(Deno.execPath(), { args: denoArgs }).spawn().status;
    if (code !== 0) {
      console.error(`error: deno compile failed for ${target} (exit ${code})`);
      return code;
    }
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
