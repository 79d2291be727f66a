/**
 * The open-file limit of `relay serve` as the README runs it (`deno run` /
 * `deno task`): the runtime raises the soft limit to the hard one when the
 * process starts, so a server started from a shell with a low `ulimit -Sn`
 * can still hold `--max-connections` connections. (Deno has no API to read or
 * set it from the program without `--allow-all` or `--allow-ffi`; running out
 * anyway is survived and logged, see tests/reliability/flood_test.ts.)
 *
 * @module
 */

import assert from "node:assert/strict";
import { startServer, tempDir } from "../helpers.ts";

/** Soft and hard "Max open files" of a running process (`null`: unlimited). */
async function limitsOf(pid: number): Promise<{ soft: number | null; hard: number | null }> {
  // `cat`, because Deno reads /proc/<pid>/ only with --allow-all.
  const { stdout } = await new Deno.Command("cat", { args: [`/proc/${pid}/limits`] }).output();
  const line = new TextDecoder().decode(stdout).split("\n")
    .find((text) => text.startsWith("Max open files"));
  assert.ok(line, `no open-file limit for ${pid}`);
  const [soft, hard] = line.slice("Max open files".length).trim().split(/\s+/)
    .map((text) => text === "unlimited" ? null : Number(text));
  return { soft, hard };
}

/** The hard limit a child of this process gets, from `ulimit -Hn` in `sh`. */
async function hardLimit(): Promise<number | null> {
  const { stdout } = await new Deno.Command("sh", { args: ["-c", "ulimit -Hn"] }).output();
  const text = new TextDecoder().decode(stdout).trim();
  return text === "unlimited" ? null : Number(text);
}

Deno.test("relay serve started with a low soft open-file limit runs with it raised to the hard one", async () => {
  await using dir = await tempDir();
  const hard = await hardLimit();
  assert.ok(hard === null || hard > 256, `the hard limit here is ${hard}`);
  await using server = await startServer([], {
    cwd: dir.path,
    wrap: ["sh", "-c", 'ulimit -Sn 256 && exec "$@"', "sh"],
  });
  const limit = await limitsOf(server.process.pid);
  assert.equal(limit.hard, hard);
  // With no hard limit, the runtime searches for the highest soft limit allowed.
  if (hard !== null) assert.equal(limit.soft, hard);
  else assert.ok(limit.soft === null || limit.soft > 256, `soft limit ${limit.soft}`);
  assert.equal((await server.stop()).status.code, 0);
});
