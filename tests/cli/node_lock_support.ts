/**
 * Running a node-locked Relay in tests, without ever touching the checkout.
 *
 * Test files run in parallel, so no test may run `deno task lock` on the
 * repository: a locked `cli/node_lock_build.ts` would lock every other test's
 * `relay` too. Instead {@link lockedBuild} copies the product's sources
 * (`main.ts`, `cli/`, `lib/`, `server/`, `deno.json`, `deno.lock`) into a
 * temporary folder and writes the lock module there with the same
 * `renderLockModule()` that `deno task lock` and `deno task compile` use:
 * the copy is exactly the locked build, run by `deno run` as the binary
 * would run. (An import map overriding the module would also work, but
 * `--import-map` replaces `deno.json`'s imports, so the copy is simpler and
 * has nothing to keep in step.) In-process tests instead pass the lock to
 * `run(args, io, { nodeLock })` and another host through `Io.host`.
 *
 * @module
 */

import { createHmac } from "node:crypto";
import { fileURLToPath } from "node:url";
import { type Io, run } from "../../cli/program.ts";
import { LOCK_MODULE, renderLockModule } from "../../scripts/lock.ts";
import type { HostReader, NodeLock } from "../../lib/node_lock.ts";
import { RELAY_PERMISSIONS } from "../../scripts/permissions.ts";
import { type CliResult, runDeno } from "../helpers.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** What a build is made of: everything `main.ts` imports, and the config that resolves it. */
const SOURCES = ["main.ts", "deno.json", "deno.lock", "cli", "lib", "server"];

/**
 * A locked build in `dir/src`: a copy of the sources with the lock module
 * for `lock`. Returns the path of its `main.ts`.
 */
export async function lockedBuild(dir: string, lock: NodeLock): Promise<string> {
  const src = `${dir}/src`;
  for (const entry of SOURCES) await copy(`${ROOT}${entry}`, `${src}/${entry}`);
  await Deno.writeTextFile(`${src}/${LOCK_MODULE}`, renderLockModule(lock));
  return `${src}/main.ts`;
}

async function copy(from: string, to: string): Promise<void> {
  const info = await Deno.stat(from);
  if (!info.isDirectory) {
    await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(from, to);
    return;
  }
  for await (const entry of Deno.readDir(from)) {
    await copy(`${from}/${entry.name}`, `${to}/${entry.name}`);
  }
}

/** Runs `deno run <relay permissions> <main> ...args` in `cwd`, as `runCli` runs the checkout's. */
export function runBuild(
  main: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<CliResult> {
  return runDeno(["run", "--quiet", ...RELAY_PERMISSIONS, main, ...args], options);
}

/**
 * This machine's fingerprint, computed here independently of Relay: the
 * HMAC-SHA256 of `keygen-relay` keyed by the machine id, as
 * `machineid --appid keygen-relay` prints it.
 */
export async function thisMachineFingerprint(): Promise<string> {
  let id: string | undefined;
  for (const path of ["/var/lib/dbus/machine-id", "/etc/machine-id"]) {
    id = await Deno.readTextFile(path).catch(() => undefined);
    if (id) break;
  }
  if (!id) throw new Error("this machine has no machine id");
  return createHmac("sha256", id.trim()).update("keygen-relay").digest("hex");
}

/** Another host, as `Io.host` gives it: these facts instead of the system's. */
export function fakeHost(facts: {
  fingerprint: string;
  platform?: string;
  hostname?: string;
  ip?: string;
}): HostReader {
  return {
    fingerprint: () => Promise.resolve(facts.fingerprint),
    platform: () => facts.platform ?? "linux/amd64",
    hostname: () => Promise.resolve(facts.hostname ?? "relay"),
    privateIp: () =>
      facts.ip ? Promise.resolve(facts.ip) : Promise.reject(new Error("no private ip found")),
  };
}

/**
 * Runs `relay ...args` in-process as a build locked to `lock`, on `host`,
 * in `cwd` (as `INIT_CWD`), with `env` plus `NO_COLOR=1` and the clock at
 * `now` (default the moment of the call).
 */
export async function runLocked(
  args: string[],
  options: {
    cwd: string;
    lock: NodeLock;
    host: HostReader;
    env?: Record<string, string>;
    now?: Date;
    shutdown?: AbortSignal;
    onStdout?: (text: string) => void;
  },
): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const io: Io = {
    stdout: (text) => {
      stdout += text;
      options.onStdout?.(text);
    },
    stderr: (text) => (stderr += text),
    env: { NO_COLOR: "1", INIT_CWD: options.cwd, ...options.env },
    stdoutIsTerminal: false,
    stderrIsTerminal: false,
    now: () => options.now ?? new Date(),
    host: options.host,
    shutdown: options.shutdown,
  };
  const code = await run(args, io, { nodeLock: options.lock });
  return { code, stdout, stderr };
}
