/**
 * The command line of `deno task bench`, and the two sizes of a run (full
 * and `--quick`) it picks from.
 *
 * @module
 */

import { InvalidArgumentError } from "commander";
import { STRATEGIES, type Strategy } from "../../lib/leases.ts";
import { isPostgresUrl } from "../../lib/storage/postgres/connect.ts";
import {
  commaList,
  CONSOLE,
  oneOf,
  type Parsed,
  parseScriptArgs,
  positiveInteger,
  scriptCommand,
  type ScriptOutput,
} from "../command_line.ts";
import { type Generator, GENERATORS } from "./load.ts";

/** The sections of a run, in the order they run (`--only` picks some). */
export const SECTIONS = [
  "ceiling",
  "load",
  "sweep",
  "diag",
  "postgres",
  "reap",
  "add",
  "ls",
  "startup",
  "rss",
] as const;

/** One of {@link SECTIONS}. */
export type Section = typeof SECTIONS[number];

/** What `deno task bench` was asked to do. */
export interface BenchOptions {
  quick: boolean;
  connections: number;
  load: "auto" | Generator;
  /** Where the report goes; null: BENCHMARKS.md, or bench-out/BENCHMARKS.quick.md with --quick. */
  out: string | null;
  tmpDir: string | undefined;
  /** The sections to run; null: all. */
  only: Set<Section> | null;
  clientProcesses: number;
  /** Re-render the report from a results file instead of measuring. */
  fromJson: string | null;
  /** Leasing runs only for these pool sizes / strategies (null: the profile's). */
  ns: number[] | null;
  strategies: Strategy[] | null;
  /**
   * The postgres section's server: an admin URL (a superuser on its
   * `postgres` database); null: a private server started for the run.
   */
  postgres: string | null;
}

/** How much a run measures, and for how long. */
export interface Profile {
  ns: number[];
  strategies: Strategy[];
  audits: boolean[];
  /** Seconds of each kind of load run. */
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
  /** Connections of the lower-concurrency runs. */
  sweep: number[];
  /** The postgres section: pool size, and the replica counts measured on PostgreSQL. */
  postgres: { n: number; replicas: number[] };
}

/** The full run that writes BENCHMARKS.md (8–10 minutes on 2 cores). */
export const FULL: Profile = {
  ns: [1_000, 100_000],
  strategies: [...STRATEGIES],
  audits: [true, false],
  seconds: { warm: 1, claim: 6, release: 6, heartbeat: 6, cycle: 6, ceiling: 6, sweep: 3 },
  maxClaimRounds: 40,
  reap: [{ expired: 10_000, licenses: 100_000 }, { expired: 100_000, licenses: 100_000 }],
  add: [1_000, 10_000],
  lsLicenses: 100_000,
  startup: { ns: [1_000, 100_000], trials: 5 },
  rss: { licenses: 100_000, nodes: 10_000 },
  sweep: [1, 4, 16],
  postgres: { n: 100_000, replicas: [1, 3] },
};

/** `--quick`: N = 1,000 only and 1 s runs, a smoke run of every section. */
export const QUICK: Profile = {
  ns: [1_000],
  strategies: [...STRATEGIES],
  audits: [true, false],
  seconds: { warm: 1, claim: 1, release: 1, heartbeat: 1, cycle: 1, ceiling: 1, sweep: 1 },
  maxClaimRounds: 3,
  reap: [{ expired: 1_000, licenses: 1_000 }],
  add: [100, 1_000],
  lsLicenses: 1_000,
  startup: { ns: [1_000], trials: 3 },
  rss: { licenses: 1_000, nodes: 1_000 },
  sweep: [1],
  postgres: { n: 1_000, replicas: [1, 3] },
};

/** The profile `options` ask for: full or quick, narrowed by `--ns` and `--strategies`. */
export function profileOf(options: BenchOptions): Profile {
  const base = options.quick ? QUICK : FULL;
  return { ...base, ns: options.ns ?? base.ns, strategies: options.strategies ?? base.strategies };
}

/** A `postgres://` URL, or a usage error that quotes what was given. */
function postgresUrl(text: string): string {
  if (!isPostgresUrl(text)) {
    throw new InvalidArgumentError(`Expected a postgres:// URL, got "${text}"`);
  }
  return text;
}

/** Parses the command line of `deno task bench`; prints help or the error through `output`. */
export function parseBenchArgs(
  args: string[],
  output: ScriptOutput = CONSOLE,
): Parsed<BenchOptions> {
  const command = scriptCommand(
    "deno task bench",
    "Benchmarks relay serve and the vendor CLI; writes BENCHMARKS.md.",
    output,
  )
    .usage("[options]")
    .option(
      "--quick",
      "N = 1,000 only, 1 s runs (a smoke run, under 2 minutes); " +
        "writes bench-out/BENCHMARKS.quick.md unless --out is given",
    )
    .option("--connections <n>", "keep-alive connections of each load run", positiveInteger, 64)
    .option(
      "--load <generator>",
      "load generator: auto (wrk if on PATH, else Deno), wrk or deno",
      oneOf(["auto", ...GENERATORS], "load generator"),
      "auto",
    )
    .option("--client-processes <n>", "Deno client processes", positiveInteger, 2)
    .option("--out <file>", "where to write the report (default: BENCHMARKS.md)")
    .option("--tmp-dir <dir>", "where the temporary databases go (default: the system's)")
    .option(
      "--only <section,...>",
      `run only these: ${SECTIONS.join(", ")}`,
      (text: string) =>
        text.split(",").map((s) => s.trim()).filter(Boolean).map(oneOf(SECTIONS, "section")),
    )
    .option(
      "--ns <n,...>",
      "leasing runs for these pool sizes only (e.g. 100000)",
      commaList(positiveInteger),
    )
    .option(
      "--strategies <s,...>",
      "leasing runs for these strategies only (e.g. fifo,rand)",
      commaList((text) => oneOf(STRATEGIES, "strategy")(text.trim())),
    )
    .option(
      "--postgres <admin-url>",
      "the postgres section uses this server (postgres://superuser@host:port/postgres) " +
        "instead of starting a private one; it creates and drops relay_bench_* databases",
      postgresUrl,
    )
    .option(
      "--from-json <file>",
      "measure nothing: write the report again from a results file " +
        "(bench-out/results-full.json), e.g. after editing its notes",
    );
  return parseScriptArgs(command, args, (values) => ({
    quick: values.quick === true,
    connections: values.connections as number,
    load: values.load as BenchOptions["load"],
    out: (values.out as string | undefined) ?? null,
    tmpDir: values.tmpDir as string | undefined,
    only: values.only ? new Set(values.only as Section[]) : null,
    clientProcesses: values.clientProcesses as number,
    fromJson: (values.fromJson as string | undefined) ?? null,
    ns: (values.ns as number[] | undefined) ?? null,
    strategies: (values.strategies as Strategy[] | undefined) ?? null,
    postgres: (values.postgres as string | undefined) ?? null,
  }));
}
