/**
 * The servers the benchmark measures, as child processes: the real
 * `relay serve` (spawned as `deno run main.ts` with the permissions of
 * `scripts/permissions.ts`) and the ceiling of `ceiling.ts`. Each prints a
 * JSON start-up line with its port; a {@link Server} is one that printed it.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import type { Strategy } from "../../lib/leases.ts";
import { RELAY_PERMISSIONS } from "../permissions.ts";
import { spawn, type Spawned } from "./procs.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));
const CEILING = fileURLToPath(new URL("./ceiling.ts", import.meta.url));

/** A server that is listening on 127.0.0.1; `await using` stops it. */
export interface Server {
  kind: "relay" | "ceiling";
  port: number;
  pid: number;
  process: Spawned;
  /** Epoch ms when its start-up line was read. */
  listenedAt: number;
  /** SIGTERM, then SIGKILL after `graceMs` (default 10 s). */
  stop(graceMs?: number): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** How to run `relay serve`; every setting has the benchmark's default. */
export interface RelayServerOptions {
  database: string;
  /** Default fifo. */
  strategy?: Strategy;
  /** Default true. */
  audit?: boolean;
  /** Default 24h, so that prepared leases stay live. */
  ttl?: string;
  /** Default 15s. */
  cullInterval?: string;
  /** Default 0: any free port. */
  port?: number;
  /** `key=value` SQLite pragmas (`--pragma`). */
  pragmas?: string[];
  /** Flags for `deno run` itself, e.g. `--cpu-prof`. */
  denoFlags?: string[];
}

/** The environment of spawned Deno processes: ours without Relay's settings. */
export function childEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  for (const key of Object.keys(env)) {
    if (key.startsWith("RELAY_") || ["DEBUG", "PORT", "BIND_ADDR"].includes(key)) delete env[key];
  }
  env.NO_COLOR = "1";
  return env;
}

/** The `deno` arguments that run the relay CLI with `args`, as `deno task relay` does. */
export function relayCommand(args: string[], denoFlags: string[] = []): string[] {
  return ["run", "--quiet", ...denoFlags, ...RELAY_PERMISSIONS, MAIN, ...args];
}

/** Spawns the relay CLI with `args` (its environment without Relay's settings). */
export function spawnRelay(
  args: string[],
  options: { cwd?: string; discardStdout?: boolean; denoFlags?: string[] } = {},
): Spawned {
  return spawn(Deno.execPath(), relayCommand(args, options.denoFlags), {
    cwd: options.cwd,
    env: childEnv(),
    discardStdout: options.discardStdout,
  });
}

/** Spawns `relay serve` without waiting for it to listen. */
export function spawnRelayServer(options: RelayServerOptions): Spawned {
  const args: string[] = [];
  if (options.audit === false) args.push("--no-audit");
  for (const pragma of options.pragmas ?? []) args.push("--pragma", pragma);
  args.push(
    "--database",
    options.database,
    "serve",
    "--bind",
    "127.0.0.1",
    "--port",
    String(options.port ?? 0),
    "--strategy",
    options.strategy ?? "fifo",
    "--ttl",
    options.ttl ?? "24h",
    "--cull-interval",
    options.cullInterval ?? "15s",
  );
  return spawnRelay(args, { denoFlags: options.denoFlags });
}

/** Starts `relay serve`; resolves once it listens. */
export function startRelay(options: RelayServerOptions): Promise<Server> {
  return listening("relay", spawnRelayServer(options), "relay listening");
}

/**
 * Spawns `ceiling.ts` on `database` and `port` (0: any), with its optional
 * synchronous setting and commit mode, without waiting for it to listen.
 */
export function spawnCeiling(database: string, port: number, ...settings: string[]): Spawned {
  return spawn(
    Deno.execPath(),
    [
      "run",
      "--quiet",
      "--allow-read",
      "--allow-write",
      "--allow-net=127.0.0.1",
      CEILING,
      database,
      String(port),
      ...settings,
    ],
    { env: childEnv() },
  );
}

/** Starts the ceiling on `database`; resolves once it listens. */
export function startCeiling(
  database: string,
  synchronous: "FULL" | "NORMAL" = "FULL",
  mode: "single" | "group" = "single",
): Promise<Server> {
  return listening("ceiling", spawnCeiling(database, 0, synchronous, mode), "ceiling listening");
}

/** Waits (at most 60 s) for the start-up line that contains `marker`; kills the process if none. */
async function listening(kind: Server["kind"], process: Spawned, marker: string): Promise<Server> {
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} did not start within 60 s`)), 60_000);
    process.onStdout = (l) => {
      if (l.includes(marker)) {
        clearTimeout(timer);
        resolve(l);
      }
    };
    process.done.then((status) => {
      clearTimeout(timer);
      reject(
        new Error(`${kind} exited (${status.code}) before listening: ${process.stderr.join("\n")}`),
      );
    });
  }).catch(async (error) => {
    process.kill();
    await process.done;
    throw error;
  });
  const listenedAt = Date.now();
  const port = Number(JSON.parse(line).port);
  const stop = async (graceMs?: number) => {
    await process.stop(graceMs);
  };
  return {
    kind,
    port,
    pid: process.pid,
    process,
    listenedAt,
    stop,
    [Symbol.asyncDispose]: () => stop(),
  };
}
