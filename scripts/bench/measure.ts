/**
 * One measured load run against a server: the load generator's result and
 * what the server and the machine spent meanwhile (CPU time from /proc, bytes
 * the server dirtied), plus the warm-up every server gets first.
 *
 * @module
 */

import { cpuPercent, fmt, ms } from "./format.ts";
import { type Generator, mergeResults, runLoad } from "./load.ts";
import type { BenchOptions, Profile } from "./options.ts";
import type { LoadPlan } from "./plan.ts";
import { cpuSecondsOf, machineCpu, writeBytesOf } from "./procs.ts";
import type { CpuUse, Run } from "./results.ts";
import { childEnv, type Server } from "./servers.ts";

/** What every section runs with. */
export interface Context {
  options: BenchOptions;
  profile: Profile;
  generator: Generator;
  /** The temporary folder of this run. */
  dir: string;
  /** Keep-alive connections of each load run at full load. */
  connections: number;
}

/**
 * Runs `plan` against `server`, measuring the CPU it took. Several servers
 * (the replicas of one cluster) share the connections in turn, and their CPU
 * and disk writes are added up.
 */
export async function measure(
  context: Context,
  server: Server | readonly Server[],
  plan: LoadPlan,
): Promise<Run> {
  const servers = "pid" in server ? [server] : server;
  const sum = (of: (pid: number) => number) => servers.reduce((t, s) => t + of(s.pid), 0);
  const server0 = sum((pid) => cpuSecondsOf(pid));
  const main0 = sum((pid) => cpuSecondsOf(pid, true));
  const machine0 = machineCpu();
  const disk0 = sum(writeBytesOf);
  const t0 = performance.now();
  const load = await runLoad(context.generator, servers.map((s) => s.port), plan, {
    workDir: context.dir,
    clientProcesses: context.options.clientProcesses,
    env: childEnv(),
  });
  const wall = (performance.now() - t0) / 1000;
  const machine1 = machineCpu();
  return {
    load,
    cpu: {
      wall,
      server: sum((pid) => cpuSecondsOf(pid)) - server0,
      main: sum((pid) => cpuSecondsOf(pid, true)) - main0,
      machineBusy: machine1.busy - machine0.busy,
      machineTotal: machine1.total - machine0.total,
      diskBytes: sum(writeBytesOf) - disk0,
    },
  };
}

/** Heartbeats of nodes `n0` … `n<total - 1>`, each connection cycling through its share. */
export function measureHeartbeats(
  context: Context,
  server: Server | readonly Server[],
  options: { connections: number; seconds: number; total: number },
): Promise<Run> {
  return measure(context, server, {
    mode: "heartbeat",
    connections: options.connections,
    seconds: options.seconds,
    set: { kind: "range", prefix: "n", total: options.total },
  });
}

/** Several runs of the same kind (e.g. claim rounds) as one: histograms merged, CPU added. */
export function mergeRuns(runs: Run[]): Run {
  const cpu: CpuUse = {
    wall: 0,
    server: 0,
    main: 0,
    machineBusy: 0,
    machineTotal: 0,
    diskBytes: 0,
  };
  for (const run of runs) {
    for (const key of Object.keys(cpu) as (keyof CpuUse)[]) cpu[key] += run.cpu[key];
  }
  return { load: mergeResults(runs.map((r) => r.load)), cpu };
}

/**
 * A second of `DELETE`s of unknown fingerprints (404), to warm up V8 and the
 * SQLite cache before a measured run.
 */
export function warm(context: Context, server: Server | readonly Server[]): Promise<Run> {
  return measure(context, server, {
    mode: "warm",
    connections: context.connections,
    seconds: context.profile.seconds.warm,
    prefix: `w${Math.floor(Math.random() * 1e6)}-`,
  });
}

/** A run in one line of the log: rate, latency, requests and CPU. */
export function describe(run: Run, unit = "req/s"): string {
  const { load, cpu } = run;
  const bad = load.non2xx > 0 ? `, ${load.non2xx} non-2xx` : "";
  return `${fmt(load.rate)} ${unit}, p50 ${ms(load.p50)} ms, p99 ${ms(load.p99)} ms, ` +
    `max ${ms(load.max)} ms (${fmt(load.requests)} in ${load.seconds.toFixed(2)} s${bad}; ` +
    `server CPU ${cpuPercent(cpu.server, cpu)} %, main thread ${cpuPercent(cpu.main, cpu)} %)`;
}
