/**
 * Test helpers: temporary folders, minted license fixtures, running the real
 * CLI (spawned, or in-process through the same `run()`), and reading rows.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { FREE_COUNT_SHIFTS } from "../lib/storage/sqlite/schema.ts";
import { resolve } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { type Io, run } from "../cli/program.ts";
import { RELAY_PERMISSIONS } from "../scripts/permissions.ts";
import {
  generateKeyPair,
  type KeyPair,
  mintLicenseFile,
  type MintOptions,
} from "../scripts/mint.ts";

/** Absolute path of `main.ts`. */
export const MAIN = fromFileUrl(new URL("../main.ts", import.meta.url));

/**
 * Absolute path of the real Keygen fixtures: a copy of `../shared/fixtures/keygen/`
 * (public data from the reference Relay's test suite), so any clone can run the tests.
 */
export const KEYGEN_FIXTURES = fromFileUrl(new URL("./fixtures/keygen/", import.meta.url));

/** The real Keygen files: public key, and each file's id and key. */
export const KEYGEN = {
  publicKey: "e8601e48b69383ba520245fd07971e983d06d22c4257cfd82304601479cee788",
  /** A moment inside both files' validity window. */
  validAt: new Date("2025-12-20T12:00:00Z"),
  licenses: [
    {
      id: "dcea31a4-1664-4633-9f52-4a1b0b5ea2ef",
      key: "9E32DD-D8CC22-771926-C2D834-C506DC-V3",
      path: `${KEYGEN_FIXTURES}dcea31a4-1664-4633-9f52-4a1b0b5ea2ef.lic`,
    },
    {
      id: "592d08c2-4045-462c-a981-dcd2bb78ce06",
      key: "9A96B8-FD08CD-8C433B-7657C8-8A8655-V3",
      path: `${KEYGEN_FIXTURES}592d08c2-4045-462c-a981-dcd2bb78ce06.lic`,
    },
  ],
} as const;

/** What a CLI run printed and returned. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Parent variables a spawned `relay` keeps: where Deno and npm keep their
 * caches and find the registry (so a child reuses the packages the test run
 * already has, and needs no network), and `PATH` for wrapper commands.
 * Everything else is dropped, so `RELAY_*`, `DEBUG`, `NO_COLOR` and the like
 * never leak into a test.
 */
const KEPT_ENV =
  /^(DENO_DIR|DENO_CERT|DENO_TLS_CA_STORE|DENO_NO_UPDATE_CHECK|HOME|XDG_CACHE_HOME|PATH|SSL_CERT_FILE|SSL_CERT_DIR|npm_config_\w+)$/i;

/**
 * The environment of a spawned `relay`: the parent's cache and registry
 * settings (see {@link KEPT_ENV}), `NO_COLOR=1`, then `env`.
 */
export function childEnv(env: Record<string, string> = {}): Record<string, string> {
  const kept = Object.entries(Deno.env.toObject()).filter(([name]) => KEPT_ENV.test(name));
  return { ...Object.fromEntries(kept), NO_COLOR: "1", ...env };
}

/** Where {@link tempDir} folders go: `relay_test_<pid of the test process>_<random>`. */
const TEMP_PREFIX = `relay_test_${Deno.pid}_`;

/** Folders made by {@link tempDir} in this module instance and not removed yet. */
const liveTempDirs = new Set<string>();

/** Spawned `relay` processes not known to have exited, with their working folder. */
const liveChildren = new Map<Deno.ChildProcess, string>();

/** Whether the stale folders of earlier, killed runs were looked for yet. */
let swept = false;

/**
 * A temporary folder `relay_test_<pid>_<random>`, removed when disposed
 * (`await using`), also when the test failed half-way: a `relay` spawned in
 * it that still runs is killed first, folders made read-only are made
 * writable again, and a removal that races a child's last write is retried.
 * Folders a test never disposed are removed when its module unloads; those
 * of a run that was killed outright, by the next run.
 */
export async function tempDir(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: TEMP_PREFIX });
  liveTempDirs.add(path);
  if (!swept) {
    swept = true;
    // Best effort: a folder that cannot be removed fails no test.
    await removeStaleTempDirs(path.slice(0, path.lastIndexOf("/"))).catch(() => {});
  }
  return { path, [Symbol.asyncDispose]: () => removeTempDir(path) };
}

/** Kills what still runs in `path`, then removes it; retried while a child's write races it. */
async function removeTempDir(path: string): Promise<void> {
  const inside = [...liveChildren].filter(([, cwd]) => cwd === path || cwd.startsWith(`${path}/`));
  for (const [child] of inside) {
    try {
      child.kill("SIGKILL");
    } catch {
      // It exited meanwhile.
    }
    await child.status;
  }
  for (let attempt = 1;; attempt++) {
    try {
      await Deno.remove(path, { recursive: true });
      break;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) break;
      if (attempt === 5) throw error;
      // A folder a test made read-only (as a non-root user), or a file
      // created while the tree was being removed: fix and try again.
      if (error instanceof Deno.errors.PermissionDenied) makeWritable(path);
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
    }
  }
  liveTempDirs.delete(path);
}

/** Gives the owner full access to `path` and every folder under it (not following links). */
function makeWritable(path: string): void {
  try {
    Deno.chmodSync(path, 0o700);
    for (const entry of Deno.readDirSync(path)) {
      if (entry.isDirectory) makeWritable(`${path}/${entry.name}`);
    }
  } catch {
    // Not ours, or gone: the removal reports what is left.
  }
}

/**
 * Removes `relay_test_<pid>_*` folders in `tmp` whose test process no longer
 * exists (a run killed before it could clean up). Linux only: asks `sh`
 * which pids are in `/proc`, since Deno lets only `--allow-all` read it.
 * Folders of another user or with a mount inside stay. Assumes the runs that
 * share a temp folder share a pid namespace (a run in another one would look
 * dead).
 */
async function removeStaleTempDirs(tmp: string): Promise<void> {
  const candidates = new Map<string, string[]>();
  for await (const entry of Deno.readDir(tmp)) {
    const pid = /^relay_test_(\d+)_/.exec(entry.name)?.[1];
    if (!entry.isDirectory || pid === undefined || Number(pid) === Deno.pid) continue;
    candidates.set(pid, [...candidates.get(pid) ?? [], `${tmp}/${entry.name}`]);
  }
  if (candidates.size === 0) return;
  const script = 'test -d /proc/self || exit 1; for p do test -d "/proc/$p" || echo "$p"; done';
  const output = await new Deno.Command("sh", {
    args: ["-c", script, "sh", ...candidates.keys()],
    stdout: "piped",
    stderr: "null",
  }).output();
  if (!output.success) return;
  for (const pid of new TextDecoder().decode(output.stdout).split("\n")) {
    for (const path of candidates.get(pid) ?? []) {
      makeWritable(path);
      await Deno.remove(path, { recursive: true }).catch(() => {});
    }
  }
}

// A test that never disposed its folder (or whose disposal failed): last try.
globalThis.addEventListener("unload", () => {
  for (const path of liveTempDirs) {
    try {
      makeWritable(path);
      Deno.removeSync(path, { recursive: true });
    } catch {
      // Left for the next run's sweep.
    }
  }
});

/** Spawns `deno run main.ts ...args` (through `wrap` when given) and tracks it until it exits. */
function spawnMain(
  args: string[],
  options: {
    cwd: string;
    env?: Record<string, string>;
    wrap?: readonly string[];
    signal?: AbortSignal;
  },
): Deno.ChildProcess {
  const command = [...(options.wrap ?? []), Deno.execPath()];
  const child = new Deno.Command(command[0], {
    args: [...command.slice(1), "run", "--quiet", ...RELAY_PERMISSIONS, MAIN, ...args],
    cwd: options.cwd,
    env: childEnv(options.env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: options.signal,
  }).spawn();
  liveChildren.set(child, options.cwd);
  child.status.finally(() => liveChildren.delete(child));
  return child;
}

/**
 * Spawns `deno run <permissions> main.ts ...args` in `cwd`, with a clean
 * environment (see {@link childEnv}) plus `env`, and collects its output.
 * Killed after `timeoutMs` (default 60 s), so a command that hangs fails the
 * test instead. `wrap` is a command line that runs the rest, e.g.
 * `["setpriv", "--bounding-set=-dac_override", "--"]`.
 */
export async function runCli(
  args: string[],
  options: {
    cwd: string;
    env?: Record<string, string>;
    timeoutMs?: number;
    wrap?: readonly string[];
  },
): Promise<CliResult> {
  const output = await spawnMain(args, {
    ...options,
    signal: AbortSignal.timeout(options.timeoutMs ?? 60_000),
  }).output();
  return collected(output);
}

/**
 * Runs `deno ...args` (the Deno running the tests) in `cwd`, as {@link runCli}
 * runs `main.ts`: the kept cache settings plus `env`, nothing else of the
 * environment, killed after 60 s. For `deno task` and other subcommands.
 */
export async function runDeno(
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<CliResult> {
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: options.cwd,
    env: childEnv(options.env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  return collected(output);
}

/** A finished process's exit code and decoded output. */
function collected(output: Deno.CommandOutput): CliResult {
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Runs the CLI program in-process with a fixed clock and captured output. */
export async function runInProcess(
  args: string[],
  options: { now: Date; env?: Record<string, string> },
): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const io: Io = {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    env: options.env ?? {},
    stdoutIsTerminal: false,
    stderrIsTerminal: false,
    now: () => options.now,
  };
  const code = await run(args, io);
  return { code, stdout, stderr };
}

/** A minted license file written to disk. */
export interface MintedFile {
  id: string;
  key: string;
  path: string;
  certificate: string;
}

/** Key pairs are slow to make (RSA especially): one of each per test process. */
const keyPairs = new Map<string, Promise<KeyPair>>();

/** A key pair shared by the tests of this process. */
export function sharedKeyPair(kind: "ed25519" | "rsa" = "ed25519"): Promise<KeyPair> {
  let pair = keyPairs.get(kind);
  if (!pair) {
    pair = generateKeyPair(kind);
    keyPairs.set(kind, pair);
  }
  return pair;
}

/** Mints `count` license files into `dir` (as `<id>.lic`) with a shared key pair. */
export async function mintFiles(
  dir: string,
  count: number,
  options: MintOptions & { kind?: "ed25519" | "rsa" } = {},
): Promise<{ publicKey: string; files: MintedFile[] }> {
  const keyPair = await sharedKeyPair(options.kind);
  const files: MintedFile[] = [];
  for (let i = 0; i < count; i++) {
    const minted = await mintLicenseFile(keyPair, options);
    const path = `${dir}/${minted.id}.lic`;
    await Deno.writeTextFile(path, minted.certificate);
    files.push({ ...minted, path });
  }
  return { publicKey: keyPair.publicKeyText, files };
}

/** Runs one query against a database file, read-only, and returns the rows. */
export function query<T = Record<string, unknown>>(
  path: string,
  sql: string,
  ...params: (string | number | null)[]
): T[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare(sql).all(...params).map((row) => ({ ...row })) as T[];
  } finally {
    db.close();
  }
}

/**
 * SQL listing every `free_counts` counter that differs from a count of the
 * free licenses themselves (pool, level, bucket, actual, counted): no rows
 * when the triggers kept it right.
 */
export const FREE_COUNT_MISMATCHES = `
  WITH actual AS (
    ${
  FREE_COUNT_SHIFTS.map((shift, i) =>
    `SELECT IFNULL(pool_id, 0) AS pool_key, ${i + 1} AS level, id >> ${shift} AS bucket,
       count(*) AS free FROM licenses WHERE node_id IS NULL GROUP BY 1, 3`
  ).join("\n    UNION ALL ")
}
  ),
  buckets AS (
    SELECT pool_key, level, bucket FROM actual
    UNION SELECT pool_key, level, bucket FROM free_counts
  )
  SELECT b.pool_key AS pool, b.level, b.bucket, IFNULL(a.free, 0) AS actual,
    IFNULL(c.free, 0) AS counted
  FROM buckets b
  LEFT JOIN actual a USING (pool_key, level, bucket)
  LEFT JOIN free_counts c USING (pool_key, level, bucket)
  WHERE IFNULL(a.free, 0) <> IFNULL(c.free, 0)`;

/** Audit rows as `[event_type name, entity_type name, entity_id, pool_id]`, oldest first. */
export function auditTrail(path: string): [string, string, number, number | null][] {
  return query<{ event: string; entity: string; entity_id: number; pool_id: number | null }>(
    path,
    `SELECT e.name AS event, t.name AS entity, a.entity_id, a.pool_id
     FROM audit_logs a
     JOIN event_types e ON e.id = a.event_type_id
     JOIN entity_types t ON t.id = a.entity_type_id
     ORDER BY a.id`,
  ).map((row) => [row.event, row.entity, row.entity_id, row.pool_id]);
}

/** A spawned `relay` process that is serving. */
export interface ServerProcess extends AsyncDisposable {
  process: Deno.ChildProcess;
  /** Every stdout line so far (JSON log lines). */
  lines: string[];
  /** The parsed start-up line. */
  startup: Record<string, unknown>;
  /** `http://<host>:<port>` with the port of the start-up line. */
  url: string;
  port: number;
  /** Sends a signal, waits for the exit, returns the status and all output. */
  stop(
    signal?: Deno.Signal,
  ): Promise<{ status: Deno.CommandStatus; stdout: string; stderr: string }>;
}

/**
 * Spawns `relay ...args` as given in `cwd`, with a clean environment (see
 * {@link childEnv}) plus `env`, and waits for its "relay listening" line,
 * which names the port. `wrap` runs it through another command line, as
 * {@link runCli}'s does.
 */
export async function spawnRelay(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; host?: string; wrap?: readonly string[] },
): Promise<ServerProcess> {
  const process = spawnMain(args, options);
  const lines: string[] = [];
  const stderr = new Response(process.stderr).text();
  const reader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let startup: Record<string, unknown> | undefined;
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        if (buffer) lines.push(buffer);
        return;
      }
      buffer += value;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        lines.push(line);
        if (startup === undefined && line.includes('"relay listening"')) startup = JSON.parse(line);
      }
    }
  })();
  const started = Date.now();
  let exited = false;
  process.status.then(() => (exited = true));
  while (startup === undefined) {
    if (exited || Date.now() - started > 20_000) {
      if (!exited) process.kill("SIGKILL");
      await process.status;
      await pump;
      throw new Error(`relay did not start: ${await stderr}${lines.join("\n")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const port = Number(startup.port);
  let stopped: ReturnType<ServerProcess["stop"]> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    stopped ??= (async () => {
      try {
        process.kill(signal);
      } catch {
        // Already exited.
      }
      const status = await process.status;
      await pump;
      return { status, stdout: lines.map((line) => line + "\n").join(""), stderr: await stderr };
    })();
    return stopped;
  };
  return {
    process,
    lines,
    startup,
    port,
    url: `http://${options.host ?? "127.0.0.1"}:${port}`,
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop("SIGKILL");
    },
  };
}

/** Spawns `relay serve --bind 127.0.0.1 --port 0 ...args` and waits until it listens. */
export function startServer(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; wrap?: readonly string[] },
): Promise<ServerProcess> {
  return spawnRelay(["serve", "--bind", "127.0.0.1", "--port", "0", ...args], options);
}

/** The default database file of a run in `dir`. */
export function dbPath(dir: string): string {
  return `${dir}/relay.sqlite`;
}

/** Whether a path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Adds minted licenses to the database in `dir` (or `database`, relative to
 * `dir`) through the real CLI program, run in-process; returns them.
 */
export async function addMinted(
  dir: string,
  count: number,
  options: { pool?: string; database?: string } = {},
): Promise<MintedFile[]> {
  const { publicKey, files } = await mintFiles(dir, count);
  const args = ["add", "--public-key", publicKey];
  for (const file of files) args.push("--file", file.path, "--key", file.key);
  if (options.pool) args.push("--pool", options.pool);
  args.push("--database", resolve(dir, options.database ?? dbPath(dir)));
  const result = await runInProcess(args, { now: new Date(), env: { NO_COLOR: "1" } });
  if (result.code !== 0) throw new Error(`relay add failed: ${result.stderr}`);
  return files;
}

/** A deterministic PRNG (mulberry32) in [0, 1), so a failing run can be replayed. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Resolves once `condition()` holds, checking every 10 ms: for what another
 * process or connection does (a log line, output), never for time to pass.
 * Fails after `timeoutMs` with `what` in the message.
 */
export async function waitUntil(
  condition: () => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
