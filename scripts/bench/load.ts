/**
 * Load generators of `scripts/bench.ts`: wrk driven by a generated Lua script,
 * or, without wrk, the Deno client of `client.ts` in separate processes. Both
 * run a {@link LoadPlan} with one sequential loop per keep-alive connection
 * and time each request themselves, so their results mean the same thing.
 *
 * wrk's own latency statistics are not used: wrk 4.1 "corrects" them for
 * coordinated omission with synthetic samples, and reports requests per second
 * over its whole `-d` even when every thread stopped early. The Lua script
 * times each request with `clock_gettime` instead, and the rate is answers
 * over the span from the first request sent to the last answer received.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import {
  type ClientSpec,
  type ConnectionResult,
  type LoadPlan,
  type RawLoadResult,
  resultOf,
} from "./plan.ts";
import { spawn, type Spawned, withTimeout } from "./procs.ts";
import { luaScript } from "./wrk_script.ts";

/** Which program generates the load. */
export type Generator = "wrk" | "deno";

/** Every {@link Generator}. */
export const GENERATORS: readonly Generator[] = ["wrk", "deno"];

/** `generator`, or for `auto` wrk when it is on PATH and else the Deno client. */
export async function chooseGenerator(generator: Generator | "auto"): Promise<Generator> {
  if (generator !== "auto") return generator;
  try {
    await new Deno.Command("wrk", { args: ["-v"], stdout: "null", stderr: "null" }).output();
    return "wrk";
  } catch {
    return "deno";
  }
}

/** One run, summarised. */
export interface LoadResult {
  mode: LoadPlan["mode"];
  connections: number;
  /** Answers received. */
  requests: number;
  /** From the first request sent to the last answer received. */
  seconds: number;
  /** Answers per second. */
  rate: number;
  /** Answers by HTTP status. */
  statuses: Record<string, number>;
  /** Answers that are not 2xx. */
  non2xx: number;
  /** Socket errors. */
  errors: Record<string, number>;
  /** Latency percentiles and maximum, in milliseconds. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Answers received per connection. */
  perConnection: number[];
  /** Latency histogram: bucket µs → count (to merge runs). */
  hist: Record<string, number>;
}

const CLIENT = fileURLToPath(new URL("./client.ts", import.meta.url));

/**
 * Runs `plan` against `127.0.0.1:port` with `generator`; with several ports
 * (the replicas of one cluster), connection c talks to the port
 * `portOf(ports, c)` of `plan.ts` picks.
 */
export async function runLoad(
  generator: Generator,
  port: number | readonly number[],
  plan: LoadPlan,
  options: { workDir: string; clientProcesses?: number; env?: Record<string, string> },
): Promise<LoadResult> {
  const ports = typeof port === "number" ? [port] : [...port];
  if (ports.length === 0) throw new Error("a load run needs at least one port");
  const raw = generator === "wrk"
    ? await runWrk(ports, plan, options.workDir)
    : await runDenoClients(ports, plan, options.clientProcesses ?? 2, options.env);
  return summarise(plan, raw);
}

/** Merges several runs of the same kind (e.g. claim rounds) into one result. */
export function mergeResults(results: LoadResult[]): LoadResult {
  const first = results[0];
  const hist: Record<string, number> = {};
  const statuses: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let requests = 0;
  let seconds = 0;
  let max = 0;
  const perConnection = new Array(first.connections).fill(0);
  for (const result of results) {
    requests += result.requests;
    seconds += result.seconds;
    max = Math.max(max, result.max);
    addInto(hist, result.hist);
    addInto(statuses, result.statuses);
    addInto(errors, result.errors);
    result.perConnection.forEach((n, i) => (perConnection[i] += n));
  }
  return loadResult(first, { requests, seconds, statuses, errors, max, perConnection, hist });
}

/** A {@link LoadResult} from its totals: the rate, non-2xx count and percentiles derived. */
function loadResult(
  run: Pick<LoadResult, "mode" | "connections">,
  totals: Pick<
    LoadResult,
    "requests" | "seconds" | "statuses" | "errors" | "max" | "perConnection" | "hist"
  >,
): LoadResult {
  const { requests, seconds, statuses, hist } = totals;
  return {
    mode: run.mode,
    connections: run.connections,
    ...totals,
    rate: seconds > 0 ? requests / seconds : 0,
    non2xx: countNon2xx(statuses),
    ...percentiles(hist),
  };
}

function addInto(target: Record<string, number>, source: Record<string, number>): void {
  for (const [key, value] of Object.entries(source)) target[key] = (target[key] ?? 0) + value;
}

function countNon2xx(statuses: Record<string, number>): number {
  return Object.entries(statuses)
    .filter(([status]) => !status.startsWith("2"))
    .reduce((sum, [, n]) => sum + n, 0);
}

/** p50, p90, p99 of a bucket histogram, in milliseconds. */
export function percentiles(
  hist: Record<string, number>,
): { p50: number; p90: number; p99: number } {
  const buckets = Object.entries(hist).map(([us, n]) => [Number(us), n]).sort((a, b) =>
    a[0] - b[0]
  );
  const total = buckets.reduce((sum, [, n]) => sum + n, 0);
  const at = (p: number) => {
    if (total === 0) return NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * total));
    let seen = 0;
    for (const [us, n] of buckets) {
      seen += n;
      if (seen >= rank) return us / 1000;
    }
    return buckets[buckets.length - 1][0] / 1000;
  };
  return { p50: at(50), p90: at(90), p99: at(99) };
}

function summarise(plan: LoadPlan, raw: RawLoadResult): LoadResult {
  const hist: Record<string, number> = {};
  const statuses: Record<string, number> = {};
  let requests = 0;
  let first = Infinity;
  let last = -Infinity;
  let max = 0;
  const perConnection = new Array(plan.connections).fill(0);
  for (const connection of raw.connections) {
    perConnection[connection.id] = connection.received;
    if (connection.received === 0) continue;
    requests += connection.received;
    first = Math.min(first, connection.first);
    last = Math.max(last, connection.last);
    max = Math.max(max, connection.max);
    addInto(hist, connection.hist);
    addInto(statuses, connection.statuses);
  }
  const seconds = requests > 0 ? (last - first) / 1e6 : 0;
  const errors = Object.fromEntries(Object.entries(raw.errors).filter(([, n]) => n > 0));
  return loadResult(plan, {
    requests,
    seconds,
    statuses,
    errors,
    max: max / 1000,
    perConnection,
    hist,
  });
}

function parseJsonLine<T>(lines: string[], what: string): T {
  const result = resultOf<T>(lines);
  if (result === undefined) throw new Error(`${what} printed no result`);
  return result;
}

async function runWrk(ports: number[], plan: LoadPlan, workDir: string): Promise<RawLoadResult> {
  const script = `${workDir}/load-${plan.mode}.lua`;
  await Deno.writeTextFile(script, luaScript(plan, ports));
  const wrk = spawn("wrk", [
    "-t",
    String(plan.connections),
    "-c",
    String(plan.connections),
    "-d",
    `${plan.seconds}s`,
    "--timeout",
    "10s",
    "-s",
    script,
    `http://127.0.0.1:${ports[0]}/`,
  ]);
  // wrk sleeps for all of -d even when every thread has stopped; once each
  // connection reports it is done, SIGINT ends the sleep.
  let finished = 0;
  wrk.onStderr = (line) => {
    if (line.startsWith("relay-bench: connection done") && ++finished === plan.connections) {
      wrk.kill("SIGINT");
    }
  };
  const timer = setTimeout(() => wrk.kill("SIGKILL"), (plan.seconds + 30) * 1000);
  try {
    const status = await wrk.done;
    if (!status.success) {
      throw new Error(`wrk failed (${status.code}): ${wrk.stderr.join("\n")}`);
    }
  } finally {
    clearTimeout(timer);
  }
  const errorLines = wrk.stderr.filter((l) => !l.startsWith("relay-bench:"));
  if (errorLines.length > 0) throw new Error(`wrk: ${errorLines.join("\n")}`);
  return parseJsonLine<RawLoadResult>(wrk.stdout, "wrk");
}

async function runDenoClients(
  ports: number[],
  plan: LoadPlan,
  processes: number,
  env?: Record<string, string>,
): Promise<RawLoadResult> {
  const groups: number[][] = Array.from(
    { length: Math.min(processes, plan.connections) },
    () => [],
  );
  for (let c = 0; c < plan.connections; c++) groups[c % groups.length].push(c);
  const spec = (ids: number[]) =>
    ports.length === 1 ? { port: ports[0], plan, ids } : { port: ports[0], ports, plan, ids };
  const workers = groups.map((ids) => spawnClient(spec(ids), { env }));
  const results = await withTimeout(
    Promise.all(workers.map(async (worker) => {
      const status = await worker.done;
      if (!status.success) {
        throw new Error(`load client failed (${status.code}): ${worker.stderr.join("\n")}`);
      }
      return parseJsonLine<RawLoadResult>(worker.stdout, "load client");
    })),
    (plan.seconds + 30) * 1000,
    "load clients",
  ).catch((error) => {
    for (const worker of workers) worker.kill();
    throw error;
  });
  const connections: ConnectionResult[] = results.flatMap((r) => r.connections);
  const errors: Record<string, number> = {};
  for (const result of results) addInto(errors, result.errors);
  return { connections, errors };
}

/** Spawns a `client.ts` process with `spec`; it prints its result as a result line. */
export function spawnClient(
  spec: ClientSpec,
  options: { env?: Record<string, string>; stdin?: "piped" | "null" },
): Spawned {
  return spawn(
    Deno.execPath(),
    ["run", "--quiet", "--allow-net=127.0.0.1", CLIENT, JSON.stringify(spec)],
    options,
  );
}
