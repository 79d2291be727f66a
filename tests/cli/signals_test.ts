/**
 * The documented ways to run the server stop gracefully on SIGTERM, SIGINT
 * and SIGHUP sent where a supervisor or a terminal sends them: the port is
 * freed, every process of the tree is gone, and the database is closed
 * cleanly ("relay stopped", no WAL left).
 *
 * - `relay serve` itself (the compiled binary; here `deno run … main.ts serve`,
 *   the same program with the same permissions): the signal goes to it.
 * - `deno task --quiet serve` (Deno installed): the signal goes to the top
 *   `deno task`, which passes it down to the server.
 * - `npx -y deno@2.9.6 task serve` in a terminal: Ctrl-C and a hang-up signal
 *   the whole process group. (Signalled alone, npm hands SIGTERM and SIGINT to
 *   a shell that exits without passing them on, and dies of SIGHUP: the README
 *   says not to supervise `npx` itself.)
 *
 * Reads the process tree from `/proc`: Linux only, as the project's tests are.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { RELAY_PERMISSIONS } from "../../scripts/permissions.ts";
import { tempDir } from "../helpers.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SIGNALS: Deno.Signal[] = ["SIGTERM", "SIGINT", "SIGHUP"];
/** How long a start or a stop may take before the test fails (npx is slow on a busy machine). */
const DEADLINE_MS = 60_000;

/** Every process now: pid -> parent pid and state (`ps`: `/proc` needs `--allow-all` in Deno). */
async function processTable(): Promise<Map<number, { ppid: number; state: string }>> {
  const { code, stdout } = await new Deno.Command("ps", {
    args: ["-A", "-o", "pid=,ppid=,stat="],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(code, 0, "ps runs");
  const table = new Map<number, { ppid: number; state: string }>();
  for (const line of new TextDecoder().decode(stdout).split("\n")) {
    const [pid, ppid, state] = line.trim().split(/\s+/);
    if (state !== undefined) table.set(Number(pid), { ppid: Number(ppid), state });
  }
  return table;
}

/** `top` and all its descendants now. */
async function processTree(top: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const [pid, { ppid }] of await processTable()) {
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const tree = [top];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]) ?? []));
  return tree;
}

/** Those of `pids` that still run (a zombie no longer does: it only waits to be reaped). */
async function stillRunning(pids: readonly number[]): Promise<number[]> {
  const table = await processTable();
  return pids.filter((pid) => {
    const entry = table.get(pid);
    return entry !== undefined && !entry.state.startsWith("Z");
  });
}

/** Whether something accepts connections on 127.0.0.1:`port`. */
async function listening(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused) return false;
    // A listener that is closing may reset the connection it just accepted:
    // still there; the caller polls again.
    if (error instanceof Deno.errors.ConnectionReset) return true;
    throw error;
  }
}

/** Polls `check` every 50 ms until it is true; fails with `what` after `DEADLINE_MS`. */
async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** One documented way to start the server, and where its signals go. */
interface Form {
  name: string;
  command: string;
  args: string[];
  /** `group`: the signal goes to the whole process group, as a terminal sends it. */
  target: "top" | "group";
}

const FORMS: Form[] = [
  {
    name: "relay serve (the binary's program, run directly)",
    command: Deno.execPath(),
    args: ["run", "--quiet", ...RELAY_PERMISSIONS, "main.ts", "serve"],
    target: "top",
  },
  {
    name: "deno task --quiet serve",
    command: Deno.execPath(),
    args: ["task", "--quiet", "serve"],
    target: "top",
  },
  {
    name: "npx -y deno@2.9.6 task serve, in a terminal",
    command: "npx",
    args: ["-y", "deno@2.9.6", "task", "serve"],
    target: "group",
  },
];

/** The environment of a run: only what npx and deno need, and the relay's settings. */
function environment(dir: string): Record<string, string> {
  const env: Record<string, string> = {
    NO_COLOR: "1",
    RELAY_DATABASE: `${dir}/relay.sqlite`,
    RELAY_PORT: "0",
    RELAY_ADDR: "127.0.0.1",
    // npx: use the cached deno package without asking the registry.
    npm_config_prefer_offline: "true",
    npm_config_update_notifier: "false",
  };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "npm_config_cache"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/**
 * Starts `form` in its own process group, waits for the start-up line, sends
 * `signal`, and asserts a graceful stop of the whole tree.
 */
async function assertStopsCleanly(form: Form, signal: Deno.Signal): Promise<void> {
  await using dir = await tempDir();
  const child = new Deno.Command(form.command, {
    args: form.args,
    cwd: ROOT,
    env: environment(dir.path),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    // Its own process group (and session), as a terminal's job or a service has.
    detached: true,
  }).spawn();
  let stdout = "";
  const stderr = new Response(child.stderr).text();
  const pump = child.stdout.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (stdout += chunk) }),
  );
  let exited = false;
  const status = child.status.finally(() => (exited = true));
  let tree: number[] = [];
  try {
    await until("the server listens", () => {
      if (exited) throw new Error(`${form.name} exited before listening: ${stdout}`);
      return stdout.includes('"relay listening"');
    });
    const startup = JSON.parse(stdout.split("\n").find((line) => line.includes("listening"))!);
    const port = Number(startup.port);
    assert.ok(await listening(port), "the server accepts connections");
    tree = await processTree(child.pid);
    assert.ok(tree.length >= 1);

    Deno.kill(form.target === "group" ? -child.pid : child.pid, signal);

    await until("the port is freed", async () => !(await listening(port)));
    const others = tree.filter((pid) => pid !== child.pid);
    await until("every process of the tree is gone", async () => {
      return exited && (await stillRunning(others)).length === 0;
    });
    await status;
    await pump;
    assert.match(stdout, /"relay stopping: finishing requests in flight"/);
    assert.match(stdout, /"relay stopped"/, `a graceful stop: ${stdout}${await stderr}`);
    const wal = `${dir.path}/relay.sqlite-wal`;
    const walBytes = await Deno.stat(wal).then((info) => info.size, () => 0);
    assert.equal(walBytes, 0, "the database was checkpointed and closed");
  } finally {
    // On failure, leave nothing running: only the processes this test started,
    // while they still run (a pid that is gone may already be another's).
    const left = await stillRunning(tree.filter((pid) => pid !== child.pid));
    if (!exited) left.unshift(child.pid);
    for (const pid of left) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    await status;
    await pump.catch(() => {});
    await stderr;
  }
}

for (const form of FORMS) {
  Deno.test(`${form.name} stops gracefully on SIGTERM, SIGINT and SIGHUP`, async (t) => {
    for (const signal of SIGNALS) {
      const to = form.target === "group" ? "its process group" : "the top process";
      await t.step(`${signal} to ${to}`, () => assertStopsCleanly(form, signal));
    }
  });
}
