/**
 * The "sweep" section: claims and heartbeats at low concurrency, Relay and
 * the ceiling alike: the service time behind the latency at full load.
 *
 * @module
 */

import { log } from "../log.ts";
import { type Context, describe, measure, measureHeartbeats, warm } from "../measure.ts";
import { splitEvenly } from "../plan.ts";
import type { Results, SweepRow } from "../results.ts";
import { startCeiling, startRelay } from "../servers.ts";
import { Reader } from "../setup.ts";
import type { Templates } from "../templates.ts";

/** Runs the section at each of the profile's lower connection counts (none: nothing). */
export async function runSweepSection(
  context: Context,
  templates: Templates,
): Promise<Pick<Results, "sweep">> {
  if (context.profile.sweep.length === 0) return {};
  const n = Math.max(...context.profile.ns);
  const seconds = context.profile.seconds.sweep;
  const work = `${context.dir}/work.sqlite`;
  await templates.copyFree(n, work);
  const leasedWork = await templates.leasedWork(n);
  const rows: SweepRow[] = [];
  await using relayClaims = await startRelay({ database: work });
  await using relayBeats = await startRelay({ database: leasedWork });
  await using ceiling = await startCeiling(`${context.dir}/ceiling-sweep.sqlite`);
  using reader = new Reader(work);
  for (const server of [relayClaims, relayBeats, ceiling]) await warm(context, server);
  for (const connections of context.profile.sweep) {
    // Leave a few licenses free, so that no claim of the run finds none.
    const quota = splitEvenly(Math.max(0, reader.freeLicenses() - 100), connections);
    const prefix = `s${connections}-`;
    const relayClaim = await measure(context, relayClaims, {
      mode: "claim",
      connections,
      seconds,
      prefix,
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
      prefix,
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
  return { sweep: rows };
}
