/**
 * The "startup" section: from spawning a server to its first 200 from
 * `/v1/health`, for `relay serve` at each database size of the profile and
 * for the ceiling, over several trials.
 *
 * @module
 */

import { fmt } from "../format.ts";
import { log } from "../log.ts";
import type { Context } from "../measure.ts";
import { freePort, sleep, type Spawned } from "../procs.ts";
import type { Results, StartupResult } from "../results.ts";
import { spawnCeiling, spawnRelayServer } from "../servers.ts";
import type { Templates } from "../templates.ts";

/** One kind of server to start: its label in the report, and how to spawn it on a port. */
interface Variant {
  label: string;
  licenses: number;
  spawn: (port: number) => Spawned;
}

/** Runs the section. */
export async function runStartupSection(
  context: Context,
  templates: Templates,
): Promise<Pick<Results, "startup">> {
  const variants: Variant[] = [];
  for (const n of context.profile.startup.ns) {
    const database = `${context.dir}/startup-${n}.sqlite`;
    await templates.copyFree(n, database);
    variants.push({
      label: "relay serve",
      licenses: n,
      spawn: (port) => spawnRelayServer({ database, port }),
    });
  }
  const ceilingDb = `${context.dir}/ceiling-startup.sqlite`;
  variants.push({
    label: "ceiling (bare Deno.serve + SQLite)",
    licenses: 0,
    spawn: (port) => spawnCeiling(ceilingDb, port),
  });
  const startup: StartupResult[] = [];
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
    startup.push(result);
    log(
      `start-up to healthy, ${variant.label}${
        variant.licenses ? ` with ${fmt(variant.licenses)} licenses` : ""
      }: ` +
        `median ${fmt(result.median)} ms (${trials.map((t) => fmt(t)).join(", ")})`,
    );
  }
  return { startup };
}

/** Milliseconds from spawning a server to its first 200 from `/v1/health` (at most 30 s). */
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

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
