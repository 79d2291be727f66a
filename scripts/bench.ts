/**
 * `deno task bench`: measures Relay the way an operator sizing a large
 * cluster would, and writes the numbers to `BENCHMARKS.md`.
 *
 * Every measurement drives the real `relay serve` (spawned as `deno run
 * main.ts`, with the permissions of `scripts/permissions.ts`) over loopback,
 * with keep-alive connections, from a separate load generator: wrk with a
 * generated Lua script when `wrk` is on PATH, else the Deno client of
 * `scripts/bench/client.ts` in separate processes. A bare `Deno.serve` doing
 * one SQLite upsert per request (`scripts/bench/ceiling.ts`) is driven the
 * same way, as the ceiling every rate is compared with.
 *
 * ```sh
 * deno task bench [--quick] [--connections 64] [--load auto|wrk|deno] [--out FILE]
 *                 [--tmp-dir DIR] [--only SECTION,…] [--client-processes 2]
 *                 [--from-json bench-out/results-full.json]
 * ```
 *
 * The task needs `deno run --allow-read --allow-write --allow-env --allow-run
 * --allow-net=127.0.0.1` (/proc is read through `cat`: Deno lets only
 * --allow-all read it directly). Every spawned process is killed and the
 * temporary folder removed on success, failure or Ctrl-C.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import type { Strategy } from "../lib/leases.ts";
import { RELAY_PERMISSIONS } from "./permissions.ts";
import { generateKeyPair, mintLicenseFile } from "./mint.ts";
import { type Generator, mergeResults, percentiles, runLoad } from "./bench/load.ts";
import type { LoadPlan } from "./bench/plan.ts";
import {
  type AddResult,
  type AddSection,
  type CeilingRuns,
  type ConfigResult,
  type CpuUse,
  type DiagResult,
  fmt,
  LIVE_NODES,
  type LsResult,
  type Machine,
  type Memory,
  ms,
  type ReapResult,
  type Results,
  type RssResult,
  type Run,
  type StartupResult,
  type SweepRow,
  writeReport,
} from "./bench/report.ts";
import {
  cpuSecondsOf,
  freePort,
  killAll,
  machineCpu,
  memoryOf,
  readProc,
  spawn,
  type Spawned,
  writeBytesOf,
} from "./bench/procs.ts";
import {
  addLicenses,
  buildLicenseDb,
  checkpoint,
  copyDb,
  leaseDirectly,
  Reader,
  setHeartbeats,
} from "./bench/setup.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const CEILING = fileURLToPath(new URL("./bench/ceiling.ts", import.meta.url));
const REPO = fileURLToPath(new URL("..", import.meta.url));

// ---------------------------------------------------------------------------
// Options and profiles

const SECTIONS = [
  "ceiling",
  "load",
  "sweep",
  "diag",
  "reap",
  "add",
  "ls",
  "startup",
  "rss",
] as const;
type Section = typeof SECTIONS[number];

interface Options {
  quick: boolean;
  connections: number;
  load: "auto" | Generator;
  out: string | null;
  tmpDir: string | undefined;
  only: Set<Section> | null;
  clientProcesses: number;
  /** Re-render the report from a results file instead of measuring. */
  fromJson: string | null;
  /** Leasing runs only for these pool sizes / strategies (null: the profile's). */
  ns: number[] | null;
  strategies: Strategy[] | null;
}

interface Profile {
  ns: number[];
  strategies: Strategy[];
  audits: boolean[];
  seconds: {
    warm: number;
    claim: number;
    release: number;
    heartbeat: number;
    cycle: number;
    ceiling: number;
    sweep: number;
  };
  /** Claim rounds (claim every free license, release them) at most, per configuration. */
  maxClaimRounds: number;
  reap: { expired: number; licenses: number }[];
  add: number[];
  lsLicenses: number;
  startup: { ns: number[]; trials: number };
  rss: { licenses: number; nodes: number };
  sweep: number[];
}

const FULL: Profile = {
  ns: [1_000, 100_000],
  strategies: ["fifo", "lifo", "rand"],
  audits: [true, false],
  seconds: { warm: 1, claim: 6, release: 6, heartbeat: 6, cycle: 6, ceiling: 6, sweep: 3 },
  maxClaimRounds: 40,
  reap: [{ expired: 10_000, licenses: 100_000 }, { expired: 100_000, licenses: 100_000 }],
  add: [1_000, 10_000],
  lsLicenses: 100_000,
  startup: { ns: [1_000, 100_000], trials: 5 },
  rss: { licenses: 100_000, nodes: 10_000 },
  sweep: [1, 4, 16],
};

const QUICK: Profile = {
  ns: [1_000],
  strategies: ["fifo", "lifo", "rand"],
  audits: [true, false],
  seconds: { warm: 1, claim: 1, release: 1, heartbeat: 1, cycle: 1, ceiling: 1, sweep: 1 },
  maxClaimRounds: 3,
  reap: [{ expired: 1_000, licenses: 1_000 }],
  add: [100, 1_000],
  lsLicenses: 1_000,
  startup: { ns: [1_000], trials: 3 },
  rss: { licenses: 1_000, nodes: 1_000 },
  sweep: [1],
};

const USAGE = `Benchmarks relay serve and the vendor CLI; writes BENCHMARKS.md.

Usage: deno task bench [options]

Options:
  --quick                  N = 1,000 only, 1 s runs (a smoke run, under 2 minutes);
                           writes bench-out/BENCHMARKS.quick.md unless --out is given
  --connections N          keep-alive connections of each load run (default 64)
  --load auto|wrk|deno     load generator (default auto: wrk if on PATH, else Deno)
  --client-processes N     Deno client processes (default 2)
  --out FILE               where to write the report (default BENCHMARKS.md)
  --tmp-dir DIR            where the temporary databases go (default the system's)
  --only SECTION,...       run only these: ${SECTIONS.join(", ")}
  --ns N,...               leasing runs for these pool sizes only (e.g. 100000)
  --strategies S,...       leasing runs for these strategies only (e.g. fifo,rand)
  --from-json FILE         measure nothing: write the report again from a results file
                           (bench-out/results-full.json), e.g. after editing its notes
  -h, --help               print this help`;

function parseOptions(args: string[]): Options | "help" {
  const options: Options = {
    quick: false,
    connections: 64,
    load: "auto",
    out: null,
    tmpDir: undefined,
    only: null,
    clientProcesses: 2,
    fromJson: null,
    ns: null,
    strategies: null,
  };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].startsWith("--") && args[i].includes("=")
      ? [args[i].slice(0, args[i].indexOf("=")), args[i].slice(args[i].indexOf("=") + 1)]
      : [args[i], undefined];
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const positive = (v: string) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer`);
      return n;
    };
    switch (flag) {
      case "-h":
      case "--help":
        return "help";
      case "--quick":
        options.quick = true;
        break;
      case "--connections":
        options.connections = positive(value());
        break;
      case "--client-processes":
        options.clientProcesses = positive(value());
        break;
      case "--load": {
        const v = value();
        if (v !== "auto" && v !== "wrk" && v !== "deno") throw new Error(`unknown --load ${v}`);
        options.load = v;
        break;
      }
      case "--out":
        options.out = value();
        break;
      case "--tmp-dir":
        options.tmpDir = value();
        break;
      case "--from-json":
        options.fromJson = value();
        break;
      case "--ns":
        options.ns = value().split(",").map(positive);
        break;
      case "--strategies": {
        const names = value().split(",").map((s) => s.trim());
        for (const name of names) {
          if (!["fifo", "lifo", "rand"].includes(name)) throw new Error(`unknown strategy ${name}`);
        }
        options.strategies = names as Strategy[];
        break;
      }
      case "--only": {
        const names = value().split(",").map((s) => s.trim()).filter(Boolean);
        for (const name of names) {
          if (!SECTIONS.includes(name as Section)) throw new Error(`unknown section ${name}`);
        }
        options.only = new Set(names as Section[]);
        break;
      }
      default:
        throw new Error(`unknown argument ${args[i]}`);
    }
  }
  return options;
}

// ---------------------------------------------------------------------------
// Small helpers

const started = performance.now();

function log(message: string): void {
  const seconds = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
  console.log(`[${seconds}s] ${message}`);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function split(total: number, parts: number): number[] {
  return Array.from(
    { length: parts },
    (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0),
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The environment of spawned Deno processes: ours without Relay's settings. */
function childEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  for (const key of Object.keys(env)) {
    if (key.startsWith("RELAY_") || ["DEBUG", "PORT", "BIND_ADDR"].includes(key)) delete env[key];
  }
  env.NO_COLOR = "1";
  return env;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

// ---------------------------------------------------------------------------
// Servers

interface Server {
  kind: "relay" | "ceiling";
  port: number;
  pid: number;
  process: Spawned;
  /** Epoch ms when its start-up line was read. */
  listenedAt: number;
  stop(): Promise<void>;
}

interface RelayServerOptions {
  database: string;
  strategy?: Strategy;
  audit?: boolean;
  ttl?: string;
  cullInterval?: string;
  port?: number;
  pragmas?: string[];
}

function relayArgs(options: RelayServerOptions): string[] {
  const args = ["run", "--quiet", ...RELAY_PERMISSIONS, MAIN];
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
  return args;
}

function startRelay(options: RelayServerOptions): Promise<Server> {
  const process = spawn(Deno.execPath(), relayArgs(options), { env: childEnv() });
  return listening("relay", process, "relay listening");
}

function startCeiling(
  database: string,
  synchronous = "FULL",
  mode: "single" | "group" = "single",
): Promise<Server> {
  const process = spawnCeiling(database, 0, synchronous, mode);
  return listening("ceiling", process, "ceiling listening");
}

/** Spawns `scripts/bench/ceiling.ts` on `database` and `port` (0: any). */
function spawnCeiling(database: string, port: number, ...settings: string[]): Spawned {
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
  return {
    kind,
    port,
    pid: process.pid,
    process,
    listenedAt,
    async stop() {
      await process.stop();
    },
  };
}

// ---------------------------------------------------------------------------
// Load runs with CPU accounting

interface Context {
  options: Options;
  profile: Profile;
  generator: Generator;
  dir: string;
  connections: number;
}

async function measure(context: Context, server: Server, plan: LoadPlan): Promise<Run> {
  const server0 = cpuSecondsOf(server.pid);
  const main0 = cpuSecondsOf(server.pid, true);
  const machine0 = machineCpu();
  const disk0 = writeBytesOf(server.pid);
  const t0 = performance.now();
  const load = await runLoad(context.generator, server.port, plan, {
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
      server: cpuSecondsOf(server.pid) - server0,
      main: cpuSecondsOf(server.pid, true) - main0,
      machineBusy: machine1.busy - machine0.busy,
      machineTotal: machine1.total - machine0.total,
      diskBytes: writeBytesOf(server.pid) - disk0,
    },
  };
}

/** Heartbeats of nodes `n0` … `n<total - 1>`, each connection cycling through its share. */
function measureHeartbeats(
  context: Context,
  server: Server,
  options: { connections: number; seconds: number; total: number },
): Promise<Run> {
  return measure(context, server, {
    mode: "heartbeat",
    connections: options.connections,
    seconds: options.seconds,
    set: { kind: "range", prefix: "n", total: options.total },
  });
}

function mergeRuns(runs: Run[]): Run {
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

function warm(context: Context, server: Server): Promise<Run> {
  return measure(context, server, {
    mode: "warm",
    connections: context.connections,
    seconds: context.profile.seconds.warm,
    prefix: `w${Math.floor(Math.random() * 1e6)}-`,
  });
}

function describe(run: Run, unit = "req/s"): string {
  const { load, cpu } = run;
  const bad = load.non2xx > 0 ? `, ${load.non2xx} non-2xx` : "";
  return `${fmt(load.rate)} ${unit}, p50 ${ms(load.p50)} ms, p99 ${ms(load.p99)} ms, ` +
    `max ${ms(load.max)} ms (${fmt(load.requests)} in ${load.seconds.toFixed(2)} s${bad}; ` +
    `server CPU ${fmt((cpu.server / cpu.wall) * 100)} %, main thread ${
      fmt((cpu.main / cpu.wall) * 100)
    } %)`;
}

// ---------------------------------------------------------------------------
// Databases

interface Template {
  free: string;
  leased?: string;
  buildSeconds: number;
  leaseSeconds?: number;
  fileBytes: number;
  dbBytes: number;
}

class Templates {
  #dir: string;
  #built = new Map<number, Template>();

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** The template of `n` licenses if it was built. */
  built(n: number): Template | undefined {
    return this.#built.get(n);
  }

  /** The pristine database with `n` free licenses (never served; copy it). */
  async free(n: number): Promise<Template> {
    let template = this.#built.get(n);
    if (!template) {
      const free = `${this.#dir}/free-${n}.sqlite`;
      const t0 = performance.now();
      const { fileBytes } = await buildLicenseDb(free, n, nowSeconds());
      const buildSeconds = (performance.now() - t0) / 1000;
      template = { free, buildSeconds, fileBytes, dbBytes: Deno.statSync(free).size };
      this.#built.set(n, template);
      log(
        `database with ${fmt(n)} free licenses built in ${buildSeconds.toFixed(1)} s ` +
          `(${fmt(template.dbBytes / 2 ** 20)} MiB, files ${fmt(fileBytes / n)} B each)`,
      );
    }
    return template;
  }

  /** The pristine database with `n` licenses, all leased to nodes `n0`…; heartbeats now. */
  async leased(n: number): Promise<string> {
    const template = await this.free(n);
    if (!template.leased) {
      const leased = `${this.#dir}/leased-${n}.sqlite`;
      const t0 = performance.now();
      await copyDb(template.free, leased);
      const now = nowSeconds();
      leaseDirectly(leased, { count: n, prefix: "n", heartbeatAt: now, now });
      checkpoint(leased);
      template.leased = leased;
      template.leaseSeconds = (performance.now() - t0) / 1000;
      log(`database with ${fmt(n)} leased licenses made in ${template.leaseSeconds.toFixed(1)} s`);
    }
    return template.leased;
  }
}

// ---------------------------------------------------------------------------
// Sections

async function runCeiling(
  context: Context,
  mode: "single" | "group",
): Promise<CeilingRuns> {
  const { seconds } = context.profile;
  const label = mode === "group" ? "ceiling (group commit)" : "ceiling";
  const database = `${context.dir}/ceiling-${mode}.sqlite`;
  const server = await startCeiling(database, "FULL", mode);
  try {
    await warm(context, server);
    const C = context.connections;
    const claim = await measure(context, server, {
      mode: "claim",
      connections: C,
      seconds: seconds.ceiling,
      prefix: "c-",
    });
    log(`${label}, claim pattern (unique paths): ${describe(claim)}`);
    const heartbeat = await measureHeartbeats(context, server, {
      connections: C,
      seconds: seconds.ceiling,
      total: Math.max(1_000, C),
    });
    log(`${label}, heartbeat pattern (fixed paths): ${describe(heartbeat)}`);
    const cycle = await measure(context, server, {
      mode: "cycle",
      connections: C,
      seconds: seconds.ceiling,
      prefix: "y-",
    });
    log(`${label}, cycle pattern: ${describe(cycle)}`);
    return { claim, heartbeat, cycle };
  } finally {
    await server.stop();
  }
}

async function ceilingHeartbeatAgain(context: Context): Promise<Run> {
  const server = await startCeiling(`${context.dir}/ceiling-end.sqlite`);
  try {
    await warm(context, server);
    const run = await measureHeartbeats(context, server, {
      connections: context.connections,
      seconds: context.profile.seconds.ceiling,
      total: Math.max(1_000, context.connections),
    });
    log(`ceiling again at the end, heartbeat pattern: ${describe(run)}`);
    return run;
  } finally {
    await server.stop();
  }
}

function errorLines(server: Server): number {
  return server.process.stdout.filter((l) => l.includes('"level":"error"')).length;
}

async function runConfig(
  context: Context,
  templates: Templates,
  n: number,
  strategy: Strategy,
  audit: boolean,
): Promise<ConfigResult> {
  const { seconds, maxClaimRounds } = context.profile;
  const C = context.connections;
  const label = `N=${fmt(n)} ${strategy} audit ${audit ? "on" : "off"}`;
  const work = `${context.dir}/work.sqlite`;
  await copyDb((await templates.free(n)).free, work);

  // Claims, then their releases, in rounds while the time lasts: every claim
  // takes a license, so each round claims at most the free ones (per-connection
  // quotas) and releases exactly the ones answered.
  const a = await startRelay({ database: work, strategy, audit });
  let claim: Run, release: Run, cycle: Run, claimRounds = 0, claimsMemory: Memory;
  let serverErrors = 0;
  const reader = new Reader(work);
  try {
    await warm(context, a);
    const claims: Run[] = [];
    const releases: Run[] = [];
    let claimSeconds = 0;
    while (claimRounds < maxClaimRounds && claimSeconds < seconds.claim * 0.9) {
      const free = reader.freeLicenses();
      if (free < C) break;
      const prefix = `c${claimRounds}-`;
      const round = await measure(context, a, {
        mode: "claim",
        connections: C,
        seconds: Math.max(1, Math.ceil(seconds.claim - claimSeconds)),
        prefix,
        quota: split(free, C),
      });
      claims.push(round);
      claimSeconds += round.load.seconds;
      releases.push(
        await measure(context, a, {
          mode: "release",
          connections: C,
          seconds: seconds.release,
          set: { kind: "per-connection", prefix, counts: round.load.perConnection },
        }),
      );
      claimRounds++;
    }
    claim = mergeRuns(claims);
    release = mergeRuns(releases);
    log(`${label}: claim ${describe(claim)} [${claimRounds} round(s)]`);
    log(`${label}: release ${describe(release)}`);
    cycle = await measure(context, a, {
      mode: "cycle",
      connections: C,
      seconds: seconds.cycle,
      prefix: "y-",
    });
    log(`${label}: cycle ${describe(cycle)}`);
    claimsMemory = memoryOf(a.pid);
    serverErrors += errorLines(a);
  } finally {
    reader.close();
    await a.stop();
  }

  // Heartbeats of every license's node, on the database with all N leased.
  const leasedWork = `${context.dir}/leased-work-${n}.sqlite`;
  if (!(await exists(leasedWork))) await copyDb(await templates.leased(n), leasedWork);
  const b = await startRelay({ database: leasedWork, strategy, audit });
  let heartbeat: Run, heartbeatsMemory: Memory;
  try {
    await warm(context, b);
    heartbeat = await measureHeartbeats(context, b, {
      connections: C,
      seconds: seconds.heartbeat,
      total: n,
    });
    log(`${label}: heartbeat ${describe(heartbeat)}`);
    heartbeatsMemory = memoryOf(b.pid);
    serverErrors += errorLines(b);
  } finally {
    await b.stop();
  }
  return {
    n,
    strategy,
    audit,
    claim,
    release,
    cycle,
    heartbeat,
    claimRounds,
    memory: { claims: claimsMemory, heartbeats: heartbeatsMemory },
    serverErrors,
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Claims and heartbeats at low concurrency: the service time behind the 64-connection latency. */
async function runSweep(context: Context, templates: Templates): Promise<SweepRow[]> {
  const n = Math.max(...context.profile.ns);
  const seconds = context.profile.seconds.sweep;
  const work = `${context.dir}/work.sqlite`;
  await copyDb((await templates.free(n)).free, work);
  const leasedWork = `${context.dir}/leased-work-${n}.sqlite`;
  if (!(await exists(leasedWork))) await copyDb(await templates.leased(n), leasedWork);
  const rows: SweepRow[] = [];
  const relayClaims = await startRelay({ database: work });
  const relayBeats = await startRelay({ database: leasedWork });
  const ceiling = await startCeiling(`${context.dir}/ceiling-sweep.sqlite`);
  const reader = new Reader(work);
  try {
    for (const server of [relayClaims, relayBeats, ceiling]) await warm(context, server);
    for (const connections of context.profile.sweep) {
      const quota = split(Math.max(0, reader.freeLicenses() - 100), connections);
      const relayClaim = await measure(context, relayClaims, {
        mode: "claim",
        connections,
        seconds,
        prefix: `s${connections}-`,
        quota,
      });
      const relayHeartbeat = await measureHeartbeats(context, relayBeats, {
        connections,
        seconds,
        total: n,
      });
      const ceilingClaim = await measure(context, ceiling, {
        mode: "claim",
        connections,
        seconds,
        prefix: `s${connections}-`,
      });
      const ceilingHeartbeat = await measureHeartbeats(context, ceiling, {
        connections,
        seconds,
        total: 1_000,
      });
      rows.push({ connections, relayClaim, relayHeartbeat, ceilingClaim, ceilingHeartbeat });
      log(
        `${connections} connection(s): relay claim ${describe(relayClaim)}; relay heartbeat ${
          describe(relayHeartbeat)
        }; ceiling ${describe(ceilingHeartbeat)}`,
      );
    }
  } finally {
    reader.close();
    await Promise.all([relayClaims.stop(), relayBeats.stop(), ceiling.stop()]);
  }
  return rows;
}

/**
 * The same claims and heartbeats with `synchronous=NORMAL` (no fsync per
 * commit in WAL mode), Relay and ceiling alike: how much of the time is fsync.
 */
async function runDiagnostics(context: Context, templates: Templates): Promise<DiagResult> {
  const n = Math.max(...context.profile.ns);
  const seconds = context.profile.seconds;
  const C = context.connections;
  const work = `${context.dir}/work.sqlite`;
  await copyDb((await templates.free(n)).free, work);
  const leasedWork = `${context.dir}/leased-work-${n}.sqlite`;
  if (!(await exists(leasedWork))) await copyDb(await templates.leased(n), leasedWork);
  const pragmas = ["synchronous=NORMAL"];
  const reader = new Reader(work);
  let claim: Run, heartbeat: Run, ceilingBeat: Run;
  const a = await startRelay({ database: work, pragmas });
  try {
    await warm(context, a);
    claim = await measure(context, a, {
      mode: "claim",
      connections: C,
      seconds: seconds.claim,
      prefix: "d-",
      quota: split(reader.freeLicenses(), C),
    });
    log(`synchronous=NORMAL, N=${fmt(n)} fifo audit on: claim ${describe(claim)}`);
  } finally {
    reader.close();
    await a.stop();
  }
  const b = await startRelay({ database: leasedWork, pragmas });
  try {
    await warm(context, b);
    heartbeat = await measureHeartbeats(context, b, {
      connections: C,
      seconds: seconds.heartbeat,
      total: n,
    });
    log(`synchronous=NORMAL, N=${fmt(n)} fifo audit on: heartbeat ${describe(heartbeat)}`);
  } finally {
    await b.stop();
  }
  const ceiling = await startCeiling(`${context.dir}/ceiling-normal.sqlite`, "NORMAL");
  try {
    await warm(context, ceiling);
    ceilingBeat = await measureHeartbeats(context, ceiling, {
      connections: C,
      seconds: seconds.ceiling,
      total: Math.max(1_000, C),
    });
    log(`synchronous=NORMAL ceiling: heartbeat ${describe(ceilingBeat)}`);
  } finally {
    await ceiling.stop();
  }
  return { n, relayNormal: { claim, heartbeat }, ceilingNormal: { heartbeat: ceilingBeat } };
}

/**
 * Expired leases, written into the database before the server starts
 * (`--ttl 30s --cull-interval 1s`), are reaped while a client measures the
 * latency of health checks and heartbeats of a few live nodes.
 */
async function runReap(
  context: Context,
  templates: Templates,
  expired: number,
  licenses: number,
): Promise<ReapResult> {
  const label = `reap ${fmt(expired)} of ${fmt(licenses)}`;
  const database = `${context.dir}/reap.sqlite`;
  await copyDb(await templates.leased(licenses), database);
  const now = nowSeconds();
  setHeartbeats(database, { prefix: "n", first: 0, end: expired, heartbeatAt: now - 3600 });
  let live: string[];
  if (expired < licenses) {
    // The other nodes stay live for the whole run.
    setHeartbeats(database, {
      prefix: "n",
      first: expired,
      end: licenses,
      heartbeatAt: now + 86_400,
    });
    live = Array.from(
      { length: Math.min(LIVE_NODES, licenses - expired) },
      (_, i) => `n${expired + i}`,
    );
  } else {
    await addLicenses(database, LIVE_NODES, now);
    leaseDirectly(database, { count: LIVE_NODES, prefix: "live", heartbeatAt: now + 86_400, now });
    live = Array.from({ length: LIVE_NODES }, (_, i) => `live${i}`);
  }
  checkpoint(database);

  const port = freePort();
  const probe = spawn(
    Deno.execPath(),
    [
      "run",
      "--quiet",
      "--allow-net=127.0.0.1",
      fileURLToPath(new URL("./bench/client.ts", import.meta.url)),
      JSON.stringify({ port, probe: { nodes: live, seconds: 180 } }),
    ],
    { env: childEnv(), stdin: "piped" },
  );
  // Let the probe start before the server: it retries until the port answers.
  await sleep(300);
  const cullMs = 1000;
  const server = await startRelay({ database, ttl: "30s", cullInterval: "1s", port });
  const firstRun = server.listenedAt + cullMs;
  const reader = new Reader(database);
  let firstSeen = NaN;
  let doneAt = NaN;
  const deadline = Date.now() + 150_000;
  try {
    while (Date.now() < deadline) {
      const left = reader.expiredNodes(nowSeconds() - 60);
      const t = Date.now();
      if (left < expired && Number.isNaN(firstSeen)) firstSeen = t;
      if (left === 0) {
        doneAt = t;
        break;
      }
      await sleep(10);
    }
    await sleep(500);
  } finally {
    reader.close();
    await probe.child.stdin.close().catch(() => {});
  }
  const status = await Promise.race([probe.done, sleep(10_000).then(() => null)]);
  if (status === null) probe.kill();
  await server.stop();
  const line = probe.stdout.find((l) => l.startsWith("RELAY_BENCH_JSON "));
  const samples: [number, number, number][] = line
    ? JSON.parse(line.slice("RELAY_BENCH_JSON ".length)).samples
    : [];
  const windowStart = firstRun - 50;
  const windowEnd = (Number.isNaN(doneAt) ? Date.now() : doneAt) + 50;
  const inWindow = samples.filter(([start, latency]) =>
    start + latency >= windowStart && start <= windowEnd
  );
  const hist: Record<string, number> = {};
  for (const [, latency] of inWindow) {
    const bucket = Math.round(latency * 1000);
    hist[bucket] = (hist[bucket] ?? 0) + 1;
  }
  const result: ReapResult = {
    expired,
    licenses,
    seconds: (doneAt - firstRun) / 1000,
    secondsFromFirst: (doneAt - firstSeen) / 1000,
    complete: !Number.isNaN(doneAt),
    probe: {
      requests: samples.length,
      inWindow: inWindow.length,
      max: Math.max(0, ...inWindow.map(([, latency]) => latency)),
      p99: percentiles(hist).p99,
      over100: inWindow.filter(([, latency]) => latency > 100).length,
      non2xx: samples.filter(([, , s]) => s < 200 || s > 299).length,
      worst: [...inWindow].sort((x, y) => y[1] - x[1]).slice(0, 5).map((
        [start, latency],
      ) => [Math.round(start - firstRun), Math.round(latency * 10) / 10]),
    },
  };
  log(
    `${label}: ${result.complete ? "" : "INCOMPLETE, "}${result.seconds.toFixed(2)} s from the ` +
      `reaper's first run (${result.secondsFromFirst.toFixed(2)} s from the first lease freed); ` +
      `clients: ${fmt(result.probe.inWindow)} requests meanwhile, max ${
        ms(result.probe.max)
      } ms, ` +
      `p99 ${ms(result.probe.p99)} ms, ${result.probe.over100} over 100 ms; slowest ` +
      result.probe.worst.map(([at, latency]) => `${latency} ms at +${at} ms`).join(", "),
  );
  return result;
}

async function runAdd(context: Context, counts: number[]): Promise<AddSection> {
  const dir = `${context.dir}/add`;
  await Deno.mkdir(dir);
  const most = Math.max(...counts);
  const t0 = performance.now();
  const keyPair = await generateKeyPair("ed25519");
  const keys: string[] = [];
  for (let start = 0; start < most; start += 200) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(200, most - start) }, () => mintLicenseFile(keyPair)),
    );
    await Promise.all(batch.map((minted, i) => {
      keys[start + i] = minted.key;
      return Deno.writeTextFile(`${dir}/${start + i}.lic`, minted.certificate);
    }));
  }
  const mintSeconds = (performance.now() - t0) / 1000;
  log(`minted ${fmt(most)} license files in ${mintSeconds.toFixed(1)} s`);

  const addOnce = async (count: number, database: string): Promise<AddResult> => {
    const args = ["run", "--quiet", ...RELAY_PERMISSIONS, MAIN, "add", "--database", database];
    args.push("--public-key", keyPair.publicKeyText);
    for (let i = 0; i < count; i++) args.push("--file", `${i}.lic`, "--key", keys[i]);
    const argumentBytes = args.reduce((sum, a) => sum + a.length + 1, 0);
    const start = performance.now();
    const process = spawn(Deno.execPath(), args, { cwd: dir, env: childEnv() });
    const timer = setTimeout(() => process.kill(), 300_000);
    const status = await process.done;
    clearTimeout(timer);
    const seconds = (performance.now() - start) / 1000;
    const added = process.stdout.filter((l) => l.startsWith("license added successfully")).length;
    if (!status.success) log(`relay add failed: ${process.stderr.join("\n")}`);
    return { files: count, seconds, ok: status.success && added === count, added, argumentBytes };
  };
  // One file: the fixed cost of a relay add process (start-up, key import, one transaction).
  const baseline = await addOnce(1, "baseline.sqlite");
  log(`relay add of 1 file: ${baseline.seconds.toFixed(2)} s`);
  const runs: AddResult[] = [];
  for (const count of counts) {
    const run = await addOnce(count, `add-${count}.sqlite`);
    runs.push(run);
    log(
      `relay add of ${fmt(count)} files in one command: ${run.seconds.toFixed(2)} s ` +
        `(${run.ok ? "ok" : "FAILED"}, ${fmt(run.argumentBytes / 1024)} KiB of arguments)`,
    );
  }
  return { mintSeconds, baselineSeconds: baseline.seconds, runs };
}

async function runLs(context: Context, templates: Templates, n: number): Promise<LsResult> {
  const database = `${context.dir}/ls.sqlite`;
  await copyDb((await templates.free(n)).free, database);
  const start = performance.now();
  const process = spawn(
    Deno.execPath(),
    ["run", "--quiet", ...RELAY_PERMISSIONS, MAIN, "ls", "--json", "--database", database],
    { env: childEnv(), discardStdout: true },
  );
  const timer = setTimeout(() => process.kill(), 120_000);
  const status = await process.done;
  clearTimeout(timer);
  const result = {
    licenses: n,
    seconds: (performance.now() - start) / 1000,
    bytes: process.stdoutBytes,
    ok: status.success,
  };
  log(
    `relay ls --json of ${fmt(n)}: ${result.seconds.toFixed(2)} s, ${
      fmt(result.bytes / 2 ** 20, 1)
    } MiB`,
  );
  return result;
}

async function timeToHealthy(spawnServer: (port: number) => Spawned): Promise<number> {
  const port = freePort();
  const t0 = performance.now();
  const process = spawnServer(port);
  try {
    const deadline = t0 + 30_000;
    while (performance.now() < deadline) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/v1/health`, {
          signal: AbortSignal.timeout(1000),
        });
        await response.body?.cancel();
        if (response.status === 200) return performance.now() - t0;
      } catch {
        // Not listening yet.
      }
      await sleep(5);
    }
    throw new Error("server not healthy after 30 s");
  } finally {
    await process.stop();
  }
}

async function runStartup(context: Context, templates: Templates): Promise<StartupResult[]> {
  const results: StartupResult[] = [];
  const variants: { label: string; licenses: number; spawn: (port: number) => Spawned }[] = [];
  for (const n of context.profile.startup.ns) {
    const database = `${context.dir}/startup-${n}.sqlite`;
    await copyDb((await templates.free(n)).free, database);
    variants.push({
      label: "relay serve",
      licenses: n,
      spawn: (port) => spawn(Deno.execPath(), relayArgs({ database, port }), { env: childEnv() }),
    });
  }
  const ceilingDb = `${context.dir}/ceiling-startup.sqlite`;
  variants.push({
    label: "ceiling (bare Deno.serve + SQLite)",
    licenses: 0,
    spawn: (port) => spawnCeiling(ceilingDb, port),
  });
  for (const variant of variants) {
    const trials: number[] = [];
    for (let i = 0; i < context.profile.startup.trials; i++) {
      trials.push(await timeToHealthy(variant.spawn));
    }
    const result = {
      label: variant.label,
      licenses: variant.licenses,
      trials,
      median: median(trials),
      min: Math.min(...trials),
    };
    results.push(result);
    log(
      `start-up to healthy, ${variant.label}${
        variant.licenses ? ` with ${fmt(variant.licenses)} licenses` : ""
      }: ` +
        `median ${fmt(result.median)} ms (${trials.map((t) => fmt(t)).join(", ")})`,
    );
  }
  return results;
}

async function runRss(context: Context, templates: Templates): Promise<RssResult> {
  const { licenses, nodes } = context.profile.rss;
  const database = `${context.dir}/rss.sqlite`;
  await copyDb((await templates.free(licenses)).free, database);
  const now = nowSeconds();
  leaseDirectly(database, { count: nodes, prefix: "r", heartbeatAt: now, now });
  checkpoint(database);
  const server = await startRelay({ database });
  try {
    const atStart = memoryOf(server.pid);
    await warm(context, server);
    const heartbeat = await measure(context, server, {
      mode: "heartbeat",
      connections: context.connections,
      seconds: context.profile.seconds.heartbeat,
      set: { kind: "range", prefix: "r", total: nodes },
    });
    const cycle = await measure(context, server, {
      mode: "cycle",
      connections: context.connections,
      seconds: context.profile.seconds.cycle,
      prefix: "y-",
    });
    const afterLoad = memoryOf(server.pid);
    log(
      `memory with ${fmt(licenses)} licenses and ${fmt(nodes)} active nodes: ` +
        `RSS ${fmt(atStart.rssMiB, 1)} MiB at start, ${fmt(afterLoad.rssMiB, 1)} MiB after load ` +
        `(peak ${fmt(afterLoad.hwmMiB, 1)} MiB)`,
    );
    return { licenses, nodes, atStart, afterLoad, heartbeat, cycle };
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------
// Machine

async function machineInfo(generator: Generator, dir: string, options: Options): Promise<Machine> {
  const read = (path: string) => {
    try {
      return readProc(path);
    } catch {
      return "";
    }
  };
  const cpu = /^model name\s*:\s*(.+)$/m.exec(read("/proc/cpuinfo"))?.[1] ?? "unknown";
  const memKiB = Number(/^MemTotal:\s+(\d+)/m.exec(read("/proc/meminfo"))?.[1] ?? NaN);
  let generatorText = `Deno client (${options.clientProcesses} processes)`;
  if (generator === "wrk") {
    const out = await new Deno.Command("wrk", { args: ["-v"], stdout: "piped", stderr: "piped" })
      .output();
    const first = new TextDecoder().decode(out.stdout).split("\n")[0].trim();
    generatorText = `${first.replace(/ Copyright.*$/, "")}, Lua script, one thread per connection`;
  }
  // The mount that holds the temporary folder.
  const mounts = read("/proc/mounts").split("\n").map((l) => l.split(" ")).filter((f) =>
    f.length > 3
  );
  const real = Deno.realPathSync(dir);
  const mount = mounts
    .filter(([, point]) =>
      real === point || real.startsWith(point.endsWith("/") ? point : point + "/")
    )
    .sort((x, y) => y[1].length - x[1].length)[0];
  const filesystem = mount ? `${mount[2]} on ${mount[0]} (${mount[1]})` : "unknown";
  // 4 KiB write + fdatasync, as a WAL commit does.
  const probe = await Deno.open(`${dir}/fsync-probe`, {
    create: true,
    write: true,
    truncate: true,
  });
  const block = new Uint8Array(4096);
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    await probe.write(block);
    const t = performance.now();
    probe.syncDataSync();
    times.push(performance.now() - t);
  }
  probe.close();
  times.sort((a, b) => a - b);
  return {
    code: gitState(),
    cores: navigator.hardwareConcurrency,
    cpu,
    memoryGiB: memKiB / 2 ** 20,
    kernel: read("/proc/sys/kernel/osrelease").trim() || Deno.build.os,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    generator: generatorText,
    filesystem,
    fdatasync: {
      p50: times[Math.floor(times.length / 2)],
      p99: times[Math.floor(times.length * 0.99)],
    },
  };
}

function gitState(): string {
  try {
    const git = (...args: string[]) =>
      new TextDecoder().decode(
        new Deno.Command("git", { args, cwd: REPO, stdout: "piped", stderr: "null" }).outputSync()
          .stdout,
      ).trim();
    const commit = git("rev-parse", "--short", "HEAD");
    // Changes to the benchmark itself do not change what is measured.
    const dirty = git("status", "--porcelain", "--untracked-files=no").split("\n")
      .some((line) => line.trim() !== "" && !/ (scripts\/bench|BENCHMARKS\.md)/.test(line));
    return commit ? `${commit}${dirty ? " with uncommitted changes" : ""}` : "unknown";
  } catch {
    return "unknown";
  }
}

async function chooseGenerator(load: Options["load"]): Promise<Generator> {
  if (load !== "auto") return load;
  try {
    await new Deno.Command("wrk", { args: ["-v"], stdout: "null", stderr: "null" }).output();
    return "wrk";
  } catch {
    return "deno";
  }
}

// ---------------------------------------------------------------------------
// Report

// ---------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  let options: Options | "help";
  try {
    options = parseOptions(Deno.args);
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options === "help") {
    console.log(USAGE);
    return 0;
  }
  if (options.fromJson !== null) {
    const results = JSON.parse(await Deno.readTextFile(options.fromJson)) as Results;
    console.log(`report written to ${await writeReport(results, options.out)}`);
    return 0;
  }
  const base = options.quick ? QUICK : FULL;
  const profile: Profile = {
    ...base,
    ns: options.ns ?? base.ns,
    strategies: options.strategies ?? base.strategies,
  };
  const wanted = (section: Section) => options.only === null || options.only.has(section);
  const generator = await chooseGenerator(options.load);
  const dir = await Deno.makeTempDir({ prefix: "relay_bench_", dir: options.tmpDir });
  const onSignal = () => {
    console.error("bench: interrupted; stopping every process and removing the temporary files");
    killAll().finally(() => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // Best effort.
      }
      Deno.exit(130);
    });
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const machine = await machineInfo(generator, dir, options);
    log(
      `${options.quick ? "quick" : "full"} run; load generator: ${machine.generator}; ` +
        `${options.connections} connections; ${machine.cores} cores, ${machine.cpu}; temporary files in ${dir}`,
    );
    const context: Context = { options, profile, generator, dir, connections: options.connections };
    const templates = new Templates(dir);
    const results: Results = {
      mode: options.quick ? "quick" : "full",
      date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
      durationSeconds: 0,
      connections: options.connections,
      machine,
      templates: [],
      configs: [],
      reaps: [],
      startup: [],
    };
    if (wanted("ceiling")) {
      results.ceiling = await runCeiling(context, "single");
      results.ceiling.group = await runCeiling(context, "group");
    }
    if (wanted("load")) {
      for (const n of profile.ns) {
        for (const strategy of profile.strategies) {
          for (const audit of profile.audits) {
            results.configs.push(await runConfig(context, templates, n, strategy, audit));
          }
        }
        await Deno.remove(`${dir}/leased-work-${n}.sqlite`).catch(() => {});
      }
    }
    if (wanted("sweep") && profile.sweep.length > 0) {
      results.sweep = await runSweep(context, templates);
    }
    if (wanted("diag") && !options.quick) results.diag = await runDiagnostics(context, templates);
    if (wanted("reap")) {
      for (const { expired, licenses } of profile.reap) {
        results.reaps.push(await runReap(context, templates, expired, licenses));
      }
    }
    if (wanted("add")) results.add = await runAdd(context, profile.add);
    if (wanted("ls")) results.ls = await runLs(context, templates, profile.lsLicenses);
    if (wanted("startup")) results.startup = await runStartup(context, templates);
    if (wanted("rss")) results.rss = await runRss(context, templates);
    if (results.ceiling && !options.quick) {
      results.ceiling.heartbeatEnd = await ceilingHeartbeatAgain(context);
    }

    results.templates = [...profile.ns, profile.reap.map((r) => r.licenses), profile.lsLicenses]
      .flat()
      .filter((n, i, all) => all.indexOf(n) === i)
      .flatMap((n) => {
        const t = templates.built(n);
        return t
          ? [{
            n,
            buildSeconds: t.buildSeconds,
            leaseSeconds: t.leaseSeconds,
            dbMiB: t.dbBytes / 2 ** 20,
            fileBytes: t.fileBytes / n,
          }]
          : [];
      });
    results.durationSeconds = (performance.now() - started) / 1000;
    const codeNow = gitState();
    if (codeNow !== machine.code) {
      machine.code += ` at the start, ${codeNow} at the end (the code changed during the run)`;
    }

    results.generator = generator;
    results.clientProcesses = options.clientProcesses;
    await Deno.mkdir(`${REPO}bench-out`, { recursive: true });
    await Deno.writeTextFile(
      `${REPO}bench-out/results-${results.mode}.json`,
      JSON.stringify(results, null, 1),
    );
    const out = await writeReport(results, options.out);
    log(`report written to ${out}; raw results in bench-out/results-${results.mode}.json`);
    return 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await killAll();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (error) {
    console.error(
      `bench: ${error instanceof Error ? error.stack ?? error.message : String(error)}`,
    );
    await killAll();
    Deno.exit(1);
  }
}
