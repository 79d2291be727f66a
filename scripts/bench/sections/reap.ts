/**
 * The "reap" section: expired leases, written into the database before the
 * server starts (`--ttl 30s --cull-interval 1s`), are reaped while a client
 * process measures the latency of health checks and heartbeats of a few live
 * nodes.
 *
 * @module
 */

import { fmt, ms } from "../format.ts";
import { percentiles, spawnClient } from "../load.ts";
import { log } from "../log.ts";
import type { Context } from "../measure.ts";
import { type ProbeResult, resultOf } from "../plan.ts";
import { exitWithin, freePort, sleep, type Spawned } from "../procs.ts";
import { LIVE_NODES, type ReapResult, type Results } from "../results.ts";
import { childEnv, startRelay } from "../servers.ts";
import {
  addLicenses,
  checkpoint,
  leaseDirectly,
  nowSeconds,
  Reader,
  setHeartbeats,
} from "../setup.ts";
import type { Templates } from "../templates.ts";

/** The reaping server's `--ttl`, in seconds. */
const REAP_TTL = 30;

/** The reaper's interval in the measured server, in ms (`--cull-interval 1s`). */
const CULL_MS = 1000;

/** Runs the section for each (expired, licenses) pair of the profile. */
export async function runReapSection(
  context: Context,
  templates: Templates,
): Promise<Pick<Results, "reaps">> {
  const reaps: ReapResult[] = [];
  for (const { expired, licenses } of context.profile.reap) {
    reaps.push(await runReap(context, templates, expired, licenses));
  }
  return { reaps };
}

async function runReap(
  context: Context,
  templates: Templates,
  expired: number,
  licenses: number,
): Promise<ReapResult> {
  const database = `${context.dir}/reap.sqlite`;
  await templates.copyLeased(licenses, database);
  const live = await prepareExpired(database, expired, licenses);
  const port = freePort();
  const probe = spawnClient(
    { port, probe: { nodes: live, seconds: 180 } },
    { env: childEnv(), stdin: "piped" },
  );
  // Let the probe start before the server: it retries until the port answers.
  await sleep(300);
  const times = await reapWhileProbing(database, expired, port, probe);
  const samples = resultOf<ProbeResult>(probe.stdout)?.samples ?? [];
  const result = reapResult({ expired, licenses, ...times, samples });
  log(
    `reap ${fmt(expired)} of ${fmt(licenses)}: ${result.complete ? "" : "INCOMPLETE, "}` +
      `${result.seconds.toFixed(2)} s from the reaper's first run ` +
      `(${result.secondsFromFirst.toFixed(2)} s from the first lease freed); ` +
      `clients: ${fmt(result.probe.inWindow)} requests meanwhile, max ${
        ms(result.probe.max)
      } ms, p99 ${ms(result.probe.p99)} ms, ${result.probe.over100} over 100 ms; slowest ` +
      result.probe.worst.map(([at, latency]) => `${latency} ms at +${at} ms`).join(", "),
  );
  return result;
}

/**
 * Makes the first `expired` nodes' leases expired an hour ago and keeps the
 * others live for a day; when every lease expires, adds {@link LIVE_NODES}
 * live ones. Returns the live nodes the probe heartbeats.
 */
async function prepareExpired(
  database: string,
  expired: number,
  licenses: number,
): Promise<string[]> {
  const now = nowSeconds();
  // The server reaps with --ttl 30s.
  setHeartbeats(database, {
    prefix: "n",
    first: 0,
    end: expired,
    heartbeatAt: now - 3600,
    ttl: REAP_TTL,
  });
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
  return live;
}

/**
 * Starts the server on `port`, where the probe waits, and watches it reap;
 * then stops the probe and the server. Returns the reaper's first run and
 * the times of {@link watchReaping} (epoch ms).
 */
async function reapWhileProbing(
  database: string,
  expired: number,
  port: number,
  probe: Spawned,
): Promise<{ firstRun: number; firstSeen: number; doneAt: number }> {
  await using server = await startRelay({
    database,
    ttl: `${REAP_TTL}s`,
    cullInterval: "1s",
    port,
  });
  const firstRun = server.listenedAt + CULL_MS;
  let reaped: { firstSeen: number; doneAt: number };
  try {
    reaped = await watchReaping(database, expired);
    await sleep(500);
  } finally {
    // The probe stops when its stdin closes, and prints its samples.
    await probe.child.stdin.close().catch(() => {});
  }
  await exitWithin(probe, 10_000);
  return { firstRun, ...reaped };
}

/**
 * Polls the database every 10 ms (at most 150 s) until no expired lease is
 * left; returns when the first one was seen free and when none was left
 * (epoch ms; NaN if it never happened).
 */
async function watchReaping(
  database: string,
  expired: number,
): Promise<{ firstSeen: number; doneAt: number }> {
  using reader = new Reader(database);
  let firstSeen = NaN;
  const deadline = Date.now() + 150_000;
  while (Date.now() < deadline) {
    const left = reader.expiredNodes(nowSeconds() - 60);
    const t = Date.now();
    if (left < expired && Number.isNaN(firstSeen)) firstSeen = t;
    if (left === 0) return { firstSeen, doneAt: t };
    await sleep(10);
  }
  return { firstSeen, doneAt: NaN };
}

/** The result of a reap from its times and the probe's samples during it. */
function reapResult(reap: {
  expired: number;
  licenses: number;
  firstRun: number;
  firstSeen: number;
  doneAt: number;
  samples: ProbeResult["samples"];
}): ReapResult {
  const { firstRun, firstSeen, doneAt, samples } = reap;
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
  return {
    expired: reap.expired,
    licenses: reap.licenses,
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
}
