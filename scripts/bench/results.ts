/**
 * What `scripts/bench.ts` measures, as it is kept in
 * `bench-out/results-<full|quick>.json` and read again by `--from-json`:
 * change these shapes only compatibly, old results files must still render.
 *
 * @module
 */

import type { Strategy } from "../../lib/leases.ts";
import type { Generator, LoadResult } from "./load.ts";

/** What the server and the machine did during one load run. */
export interface CpuUse {
  wall: number;
  /** CPU seconds of the server process, and of its main (JavaScript) thread. */
  server: number;
  main: number;
  /** Busy and total jiffies of the machine. */
  machineBusy: number;
  machineTotal: number;
  /** Bytes the server wrote to storage (WAL and database file). */
  diskBytes: number;
}

/** One measured load run and the CPU it took. */
export interface Run {
  load: LoadResult;
  cpu: CpuUse;
}

/** The ceiling driven with the three request patterns. */
export interface CeilingRuns {
  claim: Run;
  heartbeat: Run;
  cycle: Run;
}

/** The ceiling section: one upsert per commit, and its variants. */
export interface CeilingResult extends CeilingRuns {
  /** The same server committing the requests that arrive together in one transaction. */
  group?: CeilingRuns;
  /** The heartbeat ceiling again at the end of the run, for drift. */
  heartbeatEnd?: Run;
}

/** Memory of a server process, in MiB: resident now, and its peak (VmHWM). */
export interface Memory {
  rssMiB: number;
  hwmMiB: number;
}

/** One leasing configuration (pool size, strategy, audit) under load. */
export interface ConfigResult {
  n: number;
  strategy: Strategy;
  audit: boolean;
  claim: Run;
  release: Run;
  cycle: Run;
  heartbeat: Run;
  claimRounds: number;
  /** Memory of the claim/release/cycle server and of the heartbeat server after their load. */
  memory: { claims: Memory; heartbeats: Memory };
  /** Log lines at level error from either server. */
  serverErrors: number;
}

/** Relay and the ceiling at one lower concurrency. */
export interface SweepRow {
  connections: number;
  relayClaim: Run;
  relayHeartbeat: Run;
  ceilingClaim: Run;
  ceilingHeartbeat: Run;
}

/** Relay and the ceiling again with `synchronous=NORMAL`: the cost of fsync. */
export interface DiagResult {
  n: number;
  relayNormal: { claim: Run; heartbeat: Run };
  ceilingNormal: { heartbeat: Run };
}

/** Reaping a number of expired leases while a client measures its latency. */
export interface ReapResult {
  expired: number;
  licenses: number;
  /** From the reaper's first run (start-up + cull interval) until every expired lease was free. */
  seconds: number;
  /** From the first expired lease seen free until the last. */
  secondsFromFirst: number;
  complete: boolean;
  probe: {
    requests: number;
    /** During the reap window. */
    inWindow: number;
    max: number;
    p99: number;
    over100: number;
    non2xx: number;
    /** The slowest requests: [start, ms after the reaper's first run; latency ms]. */
    worst: [number, number][];
  };
}

/** Live nodes (and connections) of the client that measures latency while reaping. */
export const LIVE_NODES = 8;

/** `relay add` runs: minting, the one-file baseline, and each count. */
export interface AddSection {
  mintSeconds: number;
  baselineSeconds: number;
  runs: AddResult[];
}

/** One `relay add` of many minted files in one command. */
export interface AddResult {
  files: number;
  seconds: number;
  ok: boolean;
  added: number;
  argumentBytes: number;
}

/** `relay ls --json` of a large database. */
export interface LsResult {
  licenses: number;
  seconds: number;
  bytes: number;
  ok: boolean;
}

/** Spawn to healthy, over several trials, of one server and database size. */
export interface StartupResult {
  label: string;
  licenses: number;
  /** Milliseconds from spawn to the first 200 of /v1/health, per trial. */
  trials: number[];
  median: number;
  min: number;
}

/** Memory of a server with many licenses and active nodes, before and after load. */
export interface RssResult {
  licenses: number;
  nodes: number;
  atStart: Memory;
  afterLoad: Memory;
  heartbeat: Run;
  cycle: Run;
}

/** One engine and replica count of the postgres section: claims and heartbeats under load. */
export interface ScaleOutRow {
  engine: "sqlite" | "postgres";
  /** `relay serve` processes on the one database; the connections are spread over them. */
  replicas: number;
  claim: Run;
  release: Run;
  heartbeat: Run;
  claimRounds: number;
  /** Log lines at level error from any replica. */
  serverErrors: number;
}

/** The postgres section: SQLite with one server beside PostgreSQL with 1 and 3 replicas. */
export interface PostgresResult {
  n: number;
  strategy: Strategy;
  audit: boolean;
  connections: number;
  /** The PostgreSQL server: version, whether the run started it, and its durability settings. */
  server: { version: string; private: boolean; settings: Record<string, string> };
  /** Seconds `relay migrate` took to copy the free and the leased template into PostgreSQL. */
  migrateSeconds: { free: number; leased: number };
  rows: ScaleOutRow[];
}

/** The machine and code measured. */
export interface Machine {
  /** The commit measured, and whether the work tree had changes. */
  code: string;
  cores: number;
  cpu: string;
  memoryGiB: number;
  kernel: string;
  deno: string;
  v8: string;
  generator: string;
  filesystem: string;
  fdatasync: { p50: number; p99: number };
}

/** Everything one benchmark run measured: `bench-out/results-<mode>.json`. */
export interface Results {
  mode: "full" | "quick";
  generator?: Generator;
  clientProcesses?: number;
  date: string;
  durationSeconds: number;
  connections: number;
  machine: Machine;
  templates: {
    n: number;
    buildSeconds: number;
    leaseSeconds?: number;
    dbMiB: number;
    fileBytes: number;
  }[];
  ceiling?: CeilingResult;
  configs: ConfigResult[];
  sweep?: SweepRow[];
  diag?: DiagResult;
  reaps: ReapResult[];
  add?: AddSection;
  ls?: LsResult;
  startup: StartupResult[];
  rss?: RssResult;
  postgres?: PostgresResult;
}
