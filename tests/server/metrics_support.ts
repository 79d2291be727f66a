/**
 * Helpers of the `/metrics` and status page tests: reading the exposition
 * format, checking it with Prometheus's own `promtool`, and ending a lease
 * the way `relay release` does.
 *
 * @module
 */

import assert from "node:assert/strict";

/** The samples of an exposition, by series (`name{a="1"}`) as written. */
export function samples(text: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    found.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return found;
}

/**
 * Runs `promtool check metrics` on `text` and asserts that it finds nothing
 * wrong. Fails (never skips) where promtool is missing: `.ci/run` installs it.
 */
export async function assertPromtoolAccepts(text: string): Promise<void> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(
        "promtool is not installed: apt-get install prometheus (.ci/run does it)",
      );
    }
    throw error;
  }
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const output = await child.output();
  const decoder = new TextDecoder();
  const said = decoder.decode(output.stdout) + decoder.decode(output.stderr);
  assert.equal(output.code, 0, `promtool check metrics failed:\n${said}\n--- input:\n${text}`);
  assert.equal(said.trim(), "", `promtool check metrics complained:\n${said}`);
}
