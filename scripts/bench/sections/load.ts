/**
 * The "load" section: Relay under full load for each pool size, strategy and
 * audit setting. Claims (then their releases) run in rounds on a copy of the
 * free database; heartbeats on the shared copy where all N are leased.
 *
 * @module
 */

import { fmt } from "../format.ts";
import { log } from "../log.ts";
import { type Context, describe, measure, measureHeartbeats, mergeRuns, warm } from "../measure.ts";
import { splitEvenly } from "../plan.ts";
import { memoryOf } from "../procs.ts";
import type { ConfigResult, Memory, Results, Run } from "../results.ts";
import { type Server, startRelay } from "../servers.ts";
import { Reader } from "../setup.ts";
import type { Templates } from "../templates.ts";

/** Runs the section: every configuration of the profile, in order. */
export async function runLoadSection(
  context: Context,
  templates: Templates,
): Promise<Pick<Results, "configs">> {
  const { ns, strategies, audits } = context.profile;
  const configs: ConfigResult[] = [];
  for (const n of ns) {
    for (const strategy of strategies) {
      for (const audit of audits) {
        configs.push(await runConfig(context, templates, { n, strategy, audit }));
      }
    }
    await templates.discardLeasedWork(n);
  }
  return { configs };
}

type Config = Pick<ConfigResult, "n" | "strategy" | "audit">;

async function runConfig(
  context: Context,
  templates: Templates,
  config: Config,
): Promise<ConfigResult> {
  const label = `N=${fmt(config.n)} ${config.strategy} audit ${config.audit ? "on" : "off"}`;
  const work = `${context.dir}/work.sqlite`;
  await templates.copyFree(config.n, work);
  const claims = await claimsReleasesCycles(context, work, config, label);
  const heartbeats = await heartbeatsOfAll(context, await templates.leasedWork(config.n), config);
  log(`${label}: heartbeat ${describe(heartbeats.heartbeat)}`);
  return {
    ...config,
    claim: claims.claim,
    release: claims.release,
    cycle: claims.cycle,
    heartbeat: heartbeats.heartbeat,
    claimRounds: claims.rounds,
    memory: { claims: claims.memory, heartbeats: heartbeats.memory },
    serverErrors: claims.serverErrors + heartbeats.serverErrors,
  };
}

/**
 * Claims, then their releases, in rounds while the time lasts: every claim
 * takes a license, so each round claims at most the free ones (per-connection
 * quotas) and releases exactly the ones answered. Then cycles.
 */
async function claimsReleasesCycles(
  context: Context,
  work: string,
  config: Config,
  label: string,
) {
  const { seconds, maxClaimRounds } = context.profile;
  const C = context.connections;
  const { strategy, audit } = config;
  await using server = await startRelay({ database: work, strategy, audit });
  using reader = new Reader(work);
  await warm(context, server);
  const claims: Run[] = [];
  const releases: Run[] = [];
  let claimSeconds = 0;
  let rounds = 0;
  while (rounds < maxClaimRounds && claimSeconds < seconds.claim * 0.9) {
    const free = reader.freeLicenses();
    if (free < C) break;
    const prefix = `c${rounds}-`;
    const round = await measure(context, server, {
      mode: "claim",
      connections: C,
      seconds: Math.max(1, Math.ceil(seconds.claim - claimSeconds)),
      prefix,
      quota: splitEvenly(free, C),
    });
    claims.push(round);
    claimSeconds += round.load.seconds;
    releases.push(
      await measure(context, server, {
        mode: "release",
        connections: C,
        seconds: seconds.release,
        set: { kind: "per-connection", prefix, counts: round.load.perConnection },
      }),
    );
    rounds++;
  }
  const claim = mergeRuns(claims);
  const release = mergeRuns(releases);
  log(`${label}: claim ${describe(claim)} [${rounds} round(s)]`);
  log(`${label}: release ${describe(release)}`);
  const cycle = await measure(context, server, {
    mode: "cycle",
    connections: C,
    seconds: seconds.cycle,
    prefix: "y-",
  });
  log(`${label}: cycle ${describe(cycle)}`);
  const memory: Memory = memoryOf(server.pid);
  return { claim, release, cycle, rounds, memory, serverErrors: errorLines(server) };
}

/** Heartbeats of every license's node, on the database with all N leased. */
async function heartbeatsOfAll(context: Context, leasedWork: string, config: Config) {
  const { strategy, audit } = config;
  await using server = await startRelay({ database: leasedWork, strategy, audit });
  await warm(context, server);
  const heartbeat = await measureHeartbeats(context, server, {
    connections: context.connections,
    seconds: context.profile.seconds.heartbeat,
    total: config.n,
  });
  return { heartbeat, memory: memoryOf(server.pid), serverErrors: errorLines(server) };
}

/** Log lines at level error the server printed so far. */
function errorLines(server: Server): number {
  return server.process.stdout.filter((l) => l.includes('"level":"error"')).length;
}
