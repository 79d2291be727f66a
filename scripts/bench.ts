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
 * same way, as the ceiling every rate is compared with. The postgres section
 * runs 1 and 3 replicas of `relay serve` on a private PostgreSQL server
 * (`tests/postgres_server.ts`) beside SQLite.
 *
 * ```sh
 * deno task bench [--quick] [--connections 64] [--load auto|wrk|deno] [--out FILE]
 *                 [--tmp-dir DIR] [--only SECTION,…] [--client-processes 2]
 *                 [--postgres postgres://…] [--from-json bench-out/results-full.json]
 * deno task bench --help
 * ```
 *
 * The task needs `deno run --allow-read --allow-write --allow-env --allow-run
 * --allow-net=127.0.0.1` (/proc is read through `cat`: Deno lets only
 * --allow-all read it directly). Every spawned process is killed and the
 * temporary folder removed on success, failure or Ctrl-C.
 *
 * The parts: `bench/options.ts` (command line, run sizes), `bench/run.ts`
 * (the sections in order, one module each in `bench/sections/`),
 * `bench/servers.ts`, `bench/measure.ts`, `bench/load.ts` (load generators),
 * `bench/templates.ts` and `bench/setup.ts` (databases), `bench/cluster.ts` and
 * `bench/postgres.ts` (replicas, PostgreSQL), `bench/machine.ts`,
 * and `bench/report/` (BENCHMARKS.md).
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { chooseGenerator } from "./bench/load.ts";
import { log } from "./bench/log.ts";
import { machineInfo } from "./bench/machine.ts";
import { type BenchOptions, parseBenchArgs, profileOf } from "./bench/options.ts";
import { killAll } from "./bench/procs.ts";
import type { Results } from "./bench/results.ts";
import { writeReport } from "./bench/report/write.ts";
import { runBenchmark } from "./bench/run.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));

/** Runs the benchmark with `args`; returns the exit code. */
async function main(args: string[]): Promise<number> {
  const parsed = parseBenchArgs(args);
  if (parsed.kind === "exit") return parsed.code;
  const options = parsed.options;
  if (options.fromJson !== null) {
    const results = JSON.parse(await Deno.readTextFile(options.fromJson)) as Results;
    console.log(`report written to ${await writeReport(results, options.out)}`);
    return 0;
  }
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
    const machine = await machineInfo(generator, dir, options.clientProcesses);
    log(
      `${options.quick ? "quick" : "full"} run; load generator: ${machine.generator}; ` +
        `${options.connections} connections; ${machine.cores} cores, ${machine.cpu}; temporary files in ${dir}`,
    );
    const context = {
      options,
      profile: profileOf(options),
      generator,
      dir,
      connections: options.connections,
    };
    const results = await runBenchmark(context, machine);
    await saveResults(results, options);
    return 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await killAll();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Writes the raw results to bench-out/results-<mode>.json, and the report. */
async function saveResults(results: Results, options: BenchOptions): Promise<void> {
  const raw = `bench-out/results-${results.mode}.json`;
  await Deno.mkdir(`${REPO}bench-out`, { recursive: true });
  await Deno.writeTextFile(`${REPO}${raw}`, JSON.stringify(results, null, 1));
  const out = await writeReport(results, options.out);
  log(`report written to ${out}; raw results in ${raw}`);
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    console.error(
      `bench: ${error instanceof Error ? error.stack ?? error.message : String(error)}`,
    );
    await killAll();
    Deno.exit(1);
  }
}
