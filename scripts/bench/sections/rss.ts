/**
 * The "rss" section: the memory of `relay serve` with many licenses and
 * active nodes, at start and after heartbeats and cycles of all of them.
 *
 * @module
 */

import { fmt } from "../format.ts";
import { log } from "../log.ts";
import { type Context, measure, warm } from "../measure.ts";
import { memoryOf } from "../procs.ts";
import type { Results } from "../results.ts";
import { startRelay } from "../servers.ts";
import { checkpoint, leaseDirectly, nowSeconds } from "../setup.ts";
import type { Templates } from "../templates.ts";

/** Runs the section on the profile's licenses and active nodes. */
export async function runRssSection(
  context: Context,
  templates: Templates,
): Promise<Pick<Results, "rss">> {
  const { licenses, nodes } = context.profile.rss;
  const database = `${context.dir}/rss.sqlite`;
  await templates.copyFree(licenses, database);
  const now = nowSeconds();
  leaseDirectly(database, { count: nodes, prefix: "r", heartbeatAt: now, now });
  checkpoint(database);
  await using server = await startRelay({ database });
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
  return { rss: { licenses, nodes, atStart, afterLoad, heartbeat, cycle } };
}
