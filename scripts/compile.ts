/**
 * Builds the single-file `relay` binaries with `deno compile`, one per
 * target, into `dist/`, with the same permissions as the `relay` task.
 *
 * ```sh
 * deno task compile                 # all five targets
 * deno task compile --target x86_64-unknown-linux-gnu
 * deno task compile --dry-run       # print the commands only
 * ```
 *
 * `deno compile` downloads the runtime for each target (`denort`) once, so the
 * build machine needs access to Deno's download host; the binaries it makes
 * need nothing at run time.
 *
 * @module
 */

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

async function main(args: string[]): Promise<number> {
  const dryRun = args.includes("--dry-run");
  const targetIndex = args.indexOf("--target");
  const targets = targetIndex >= 0 ? [args[targetIndex + 1]] : Object.keys(TARGETS);
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
