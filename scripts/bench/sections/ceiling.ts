/**
 * The "ceiling" section: the bare server of `ceiling.ts` (one upsert per
 * request) driven with Relay's three request patterns, committing each
 * upsert on its own and then in groups. Every rate of Relay is compared with
 * these.
 *
 * @module
 */

import { log } from "../log.ts";
import { type Context, describe, measure, measureHeartbeats, warm } from "../measure.ts";
import type { CeilingResult, CeilingRuns, Results, Run } from "../results.ts";
import { type Server, startCeiling } from "../servers.ts";

/** Runs the section: the ceiling with single and with group commits. */
export async function runCeilingSection(context: Context): Promise<Pick<Results, "ceiling">> {
  const ceiling: CeilingResult = await runCeiling(context, "single");
  ceiling.group = await runCeiling(context, "group");
  return { ceiling };
}

async function runCeiling(context: Context, mode: "single" | "group"): Promise<CeilingRuns> {
  const label = mode === "group" ? "ceiling (group commit)" : "ceiling";
  await using server = await startCeiling(`${context.dir}/ceiling-${mode}.sqlite`, "FULL", mode);
  await warm(context, server);
  const { connections } = context;
  const seconds = context.profile.seconds.ceiling;
  const claim = await measure(context, server, {
    mode: "claim",
    connections,
    seconds,
    prefix: "c-",
  });
  log(`${label}, claim pattern (unique paths): ${describe(claim)}`);
  const heartbeat = await measureCeilingHeartbeats(context, server);
  log(`${label}, heartbeat pattern (fixed paths): ${describe(heartbeat)}`);
  const cycle = await measure(context, server, {
    mode: "cycle",
    connections,
    seconds,
    prefix: "y-",
  });
  log(`${label}, cycle pattern: ${describe(cycle)}`);
  return { claim, heartbeat, cycle };
}

/** The ceiling's heartbeat pattern at full load: a fixed set of at least 1,000 paths. */
export function measureCeilingHeartbeats(context: Context, server: Server): Promise<Run> {
  return measureHeartbeats(context, server, {
    connections: context.connections,
    seconds: context.profile.seconds.ceiling,
    total: Math.max(1_000, context.connections),
  });
}

/** The ceiling's heartbeat pattern again at the end of a run: how much the machine drifted. */
export async function ceilingHeartbeatAgain(context: Context): Promise<Run> {
  await using server = await startCeiling(`${context.dir}/ceiling-end.sqlite`);
  await warm(context, server);
  const run = await measureCeilingHeartbeats(context, server);
  log(`ceiling again at the end, heartbeat pattern: ${describe(run)}`);
  return run;
}
