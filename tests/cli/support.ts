/**
 * Small helpers shared by the CLI tests: running `relay` in-process,
 * database paths, tolerant row reads, simulated leases, the expected
 * `--plain` table layout, and a spawned `relay` that keeps running.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { RELAY_PERMISSIONS } from "../../scripts/permissions.ts";
import {
  childEnv,
  type CliResult,
  exists,
  MAIN,
  type MintedFile,
  query,
  runInProcess,
} from "../helpers.ts";
export { dbPath, exists } from "../helpers.ts";

/**
 * Runs `relay ...args` in this process, through the same `run()` as `main.ts`,
 * as if the user ran it in `cwd`: relative paths resolve against `cwd` by
 * `INIT_CWD`, as under `deno task`. Like `runCli`, the environment is `env`
 * plus `NO_COLOR=1`; output is not a terminal; the clock is `now` (default:
 * the moment of the call). A run that takes longer than `timeoutMs` (default
 * 60 s) fails the test instead of hanging it.
 */
export async function runRelay(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; now?: Date; timeoutMs?: number },
): Promise<CliResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`relay ${args.join(" ")} took over ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([
      runInProcess(args, {
        now: options.now ?? new Date(),
        env: { NO_COLOR: "1", INIT_CWD: options.cwd, ...options.env },
      }),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** What `relay add` prints for these license ids. */
export function addedLines(guids: readonly string[]): string {
  return guids.map((guid) => `license added successfully: ${guid}\n`).join("");
}

/** Guids of the stored licenses in row-id order; [] when the database does not exist. */
export async function storedGuids(db: string): Promise<string[]> {
  if (!(await exists(db))) return [];
  return query<{ guid: string }>(db, "SELECT guid FROM licenses ORDER BY id").map((row) =>
    row.guid
  );
}

/** Number of audit rows; 0 when the database does not exist. */
export async function auditCount(db: string): Promise<number> {
  if (!(await exists(db))) return 0;
  return Number(query<{ n: number }>(db, "SELECT count(*) AS n FROM audit_logs")[0].n);
}

/** Row id of the license with this guid. */
export function rowId(db: string, guid: string): number {
  const rows = query<{ id: number }>(db, "SELECT id FROM licenses WHERE guid = ?", guid);
  if (rows.length !== 1) throw new Error(`no license ${guid}`);
  return rows[0].id;
}

/** `--file F --key K` pairs for minted files. */
export function fileArgs(files: readonly MintedFile[]): string[] {
  return files.flatMap((file) => ["--file", file.path, "--key", file.key]);
}

/** Whole seconds of `Date.now()` minus `agoSeconds`, as a Date. */
export function wholeSecondsAgo(agoSeconds: number): Date {
  return new Date((Math.floor(Date.now() / 1000) - agoSeconds) * 1000);
}

/**
 * Simulates a node leasing a license, as the server would: a `nodes` row and
 * the license's `node_id`, claims and `last_claimed_at`. Returns the node id.
 */
export function lease(
  db: string,
  guid: string,
  fingerprint: string,
  options: {
    heartbeatAt: number;
    claimedAt?: number;
    claims?: number;
    /** The lease's stored expiry (default none, as Keygen Relay stores it). */
    expiresAt?: number;
  },
): number {
  const database = new DatabaseSync(db);
  try {
    const node = database.prepare(
      `INSERT INTO nodes (fingerprint, last_heartbeat_at, lease_expires_at) VALUES (?, ?, ?)
       RETURNING id`,
    ).get(fingerprint, options.heartbeatAt, options.expiresAt ?? null) as { id: number };
    const changed = database.prepare(
      `UPDATE licenses SET node_id = ?, claims = ?, last_claimed_at = ? WHERE guid = ?`,
    ).run(node.id, options.claims ?? 1, options.claimedAt ?? null, guid);
    if (Number(changed.changes) !== 1) throw new Error(`no license ${guid}`);
    return node.id;
  } finally {
    database.close();
  }
}

/** Unix seconds as RFC 3339 UTC without fractions, or `-`. */
export function rfc3339(seconds: number | null): string {
  return seconds === null ? "-" : new Date(seconds * 1000).toISOString().replace(".000Z", "Z");
}

/** Column titles of `ls --plain` and `stat --plain`. */
export const PLAIN_COLUMNS = [
  "id",
  "pool",
  "claims",
  "node_id",
  "last_claimed_at",
  "last_released_at",
  "status",
  "node",
  "file_expires_at",
  "file_state",
];

/**
 * The reference Relay's plain layout, written out independently: every
 * column padded to its widest cell, `| a | b |` lines, a `+---+` rule.
 */
export function plainTable(rows: string[][]): string {
  const all = [PLAIN_COLUMNS, ...rows];
  const widths = PLAIN_COLUMNS.map((_, i) => Math.max(...all.map((row) => row[i].length)));
  const line = (row: string[]) =>
    `| ${row.map((cell, i) => cell + " ".repeat(widths[i] - cell.length)).join(" | ")} |\n`;
  const rule = `+${widths.map((w) => "-".repeat(w + 2)).join("+")}+\n`;
  return line(PLAIN_COLUMNS) + rule + rows.map(line).join("");
}

/** A `relay` that keeps running (`audit --follow`), its output read as it comes. */
export interface FollowingRelay extends AsyncDisposable {
  /** Everything it printed on stdout so far. */
  stdout(): string;
  /**
   * Sends `signal` and waits for it to exit; its exit code and stderr.
   * Disposing kills it if it still runs.
   */
  stop(signal?: Deno.Signal): Promise<{ code: number; stderr: string }>;
}

/** Spawns `relay …args` (`deno run main.ts` with the README's permissions) in `cwd`. */
export function spawnFollowing(args: string[], options: { cwd: string }): FollowingRelay {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...RELAY_PERMISSIONS, MAIN, ...args],
    cwd: options.cwd,
    env: childEnv(),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "";
  const stderr = new Response(child.stderr).text();
  const reading = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) stdout += chunk;
  })();
  return {
    stdout: () => stdout,
    async stop(signal = "SIGTERM") {
      child.kill(signal);
      const { code } = await child.status;
      await reading;
      return { code, stderr: await stderr };
    },
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch {
        // It exited.
      }
      await child.status;
      await reading.catch(() => {});
      await stderr.catch(() => "");
    },
  };
}
