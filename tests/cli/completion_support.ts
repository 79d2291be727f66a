/**
 * Shell completion under test: a `relay` command on `PATH` that runs this
 * checkout's `main.ts` (the scripts call it for pool names), the scripts as
 * `relay completion <shell>` prints them, and real shells to run them in.
 *
 * @module
 */

import assert from "node:assert/strict";
import { RELAY_PERMISSIONS } from "../../scripts/permissions.ts";
import { childEnv, MAIN } from "../helpers.ts";
import { runRelay } from "./support.ts";

/** `'text'` for sh. */
function shQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * Writes `<dir>/bin/relay`, a shell wrapper that runs `main.ts` with the
 * permissions of the real binary, and returns the environment that puts it
 * first on `PATH` (plus `env`).
 */
export async function relayOnPath(
  dir: string,
  env: Record<string, string> = {},
): Promise<Record<string, string>> {
  await Deno.mkdir(`${dir}/bin`, { recursive: true });
  const command = [Deno.execPath(), "run", "--quiet", ...RELAY_PERMISSIONS, MAIN];
  await Deno.writeTextFile(
    `${dir}/bin/relay`,
    `#!/bin/sh\nexec ${command.map(shQuote).join(" ")} "$@"\n`,
    { mode: 0o755 },
  );
  const base = childEnv();
  return childEnv({ PATH: `${dir}/bin:${base.PATH ?? "/usr/bin:/bin"}`, ...env });
}

/** `relay completion <shell>` through the CLI, written to `<dir>/relay.<shell>`. */
export async function completionScript(dir: string, shell: string): Promise<string> {
  const result = await runRelay(["completion", shell], { cwd: dir });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
  const path = `${dir}/relay.${shell}`;
  await Deno.writeTextFile(path, result.stdout);
  return path;
}

/** Whether `name` is a command on this machine's `PATH`. */
export async function installed(name: string): Promise<boolean> {
  const output = await new Deno.Command("sh", {
    args: ["-c", 'command -v "$1" >/dev/null', "sh", name],
  }).output();
  return output.success;
}

/** Runs `shell ...args` in `cwd` with `env`; fails the test on a non-zero exit. */
export async function runShell(
  shell: string,
  args: string[],
  options: { cwd: string; env: Record<string, string> },
): Promise<string> {
  const output = await new Deno.Command(shell, {
    args,
    cwd: options.cwd,
    env: options.env,
    clearEnv: true,
    stdin: "null",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const decoder = new TextDecoder();
  const stderr = decoder.decode(output.stderr);
  assert.equal(output.code, 0, `${shell} ${args.join(" ")}: ${stderr}`);
  assert.equal(stderr, "", `${shell} wrote to stderr`);
  return decoder.decode(output.stdout);
}

/**
 * What the bash script offers for the command line `words`, the last being
 * the word at the cursor: `COMP_WORDS`/`COMP_CWORD` set and the completion
 * function called, as bash does on TAB. bash splits `--flag=value` into
 * `--flag`, `=`, `value`; pass the words that way.
 */
export async function bashCompletions(
  script: string,
  words: string[],
  options: { cwd: string; env: Record<string, string> },
): Promise<string[]> {
  const program = [
    'source "$1"; shift',
    'COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()',
    "__relay_complete",
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join("\n");
  const output = await runShell("bash", ["-c", program, "bash", script, ...words], options);
  return output.split("\n").filter((line) => line !== "");
}
