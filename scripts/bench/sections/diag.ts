/**
 * The "diag" section: the same claims and heartbeats with
 * `synchronous=NORMAL` (no fsync per commit in WAL mode), Relay and ceiling
 * alike: how much of the time is fsync. Full runs only.
 *
 * @module
 */

import { fmt } from "../format.ts";
import { log } from "../log.ts";
import { type Context, describe, measure, measureHeartbeats, warm } from "../measure.ts";
import { splitEvenly } from "../plan.ts";
import type { Results, Run } from "../results.ts";
import { startCeiling, startRelay } from "../servers.ts";
import { Reader } from "../setup.ts";
import type { Templates } from "../templates.ts";
import { measureCeilingHeartbeats } from "./ceiling.ts";

const PRAGMAS = ["synchronous=NORMAL"];

/** Runs the section on the largest pool of the profile (nothing in a quick run). */
export async function runDiagSection(
  context: Context,
  templates: Templates,
): Promise<Pick<Results, "diag">> {
  if (context.options.quick) return {};
  const n = Math.max(...context.profile.ns);
  const work = `${context.dir}/work.sqlite`;
  await templates.copyFree(n, work);
  const claim = await claims(context, work, n);
  const heartbeat = await heartbeats(context, await templates.leasedWork(n), n);
  const ceilingBeat = await ceilingHeartbeats(context);
  return {
    diag: { n, relayNormal: { claim, heartbeat }, ceilingNormal: { heartbeat: ceilingBeat } },
  };
}

async function claims(context: Context, work: string, n: number): Promise<Run> {
  using reader = new Reader(work);
  await using server = await startRelay({ database: work, pragmas: PRAGMAS });
  await warm(context, server);
  const claim = await measure(context, server, {
    mode: "claim",
    connections: context.connections,
    seconds: context.profile.seconds.claim,
    prefix: "d-",
    quota: splitEvenly(reader.freeLicenses(), context.connections),
  });
  log(`synchronous=NORMAL, N=${fmt(n)} fifo audit on: claim ${describe(claim)}`);
  return claim;
}

async function heartbeats(context: Context, leasedWork: string, n: number): Promise<Run> {
  await using server = await startRelay({ database: leasedWork, pragmas: PRAGMAS });
  await warm(context, server);
  const heartbeat = await measureHeartbeats(context, server, {
    connections: context.connections,
    seconds: context.profile.seconds.heartbeat,
    total: n,
  });
  log(`synchronous=NORMAL, N=${fmt(n)} fifo audit on: heartbeat ${describe(heartbeat)}`);
  return heartbeat;
}

async function ceilingHeartbeats(context: Context): Promise<Run> {
  await using server = await startCeiling(`${context.dir}/ceiling-normal.sqlite`, "NORMAL");
  await warm(context, server);
  const heartbeat = await measureCeilingHeartbeats(context, server);
  log(`synchronous=NORMAL ceiling: heartbeat ${describe(heartbeat)}`);
  return heartbeat;
}
