/**
 * Several `relay serve` replicas on one database, and the claims and
 * heartbeats the postgres section measures on them: the load generator's
 * connections take the replicas in turn (connection c talks to replica
 * c mod replicas), so each replica carries an equal share.
 *
 * The procedure is the "load" section's, engine-neutral: claims run in
 * rounds on a pool of N free licenses, each round's quotas taking at most
 * the free ones and its releases giving back exactly the ones answered (the
 * free count is kept from the answers, not read from the database);
 * heartbeats run on a database where all N licenses are leased to nodes
 * `n0` … `n<N - 1>`.
 *
 * @module
 */

import { type Context, describe, measure, measureHeartbeats, mergeRuns, warm } from "./measure.ts";
import { log } from "./log.ts";
import { splitEvenly } from "./plan.ts";
import type { Run } from "./results.ts";
import { type RelayServerOptions, type Server, startRelay } from "./servers.ts";

/** Replicas of `relay serve` on one database; `await using` stops them all. */
export interface Cluster extends AsyncDisposable {
  servers: Server[];
  /** Log lines at level error the replicas printed so far. */
  errorLines(): number;
}

/**
 * Starts `replicas` servers with `options` (each on a port of its own), one
 * after the other so that none races another's start-up; resolves once all
 * listen.
 */
export async function startCluster(
  options: RelayServerOptions,
  replicas: number,
): Promise<Cluster> {
  const servers: Server[] = [];
  const stopAll = () => Promise.all(servers.map((server) => server.stop())).then(() => {});
  try {
    for (let i = 0; i < replicas; i++) servers.push(await startRelay(options));
  } catch (error) {
    await stopAll();
    throw error;
  }
  return {
    servers,
    errorLines: () =>
      servers.reduce(
        (sum, server) =>
          sum + server.process.stdout.filter((l) => l.includes('"level":"error"')).length,
        0,
      ),
    [Symbol.asyncDispose]: stopAll,
  };
}

/** Claims and releases measured on a cluster, merged over their rounds. */
export interface ClaimRuns {
  claim: Run;
  release: Run;
  rounds: number;
  serverErrors: number;
}

/**
 * Claims, then their releases, in rounds while the profile's claim time
 * lasts, on `replicas` servers over a database of `n` free licenses.
 */
export async function measureClaims(
  context: Context,
  options: RelayServerOptions & { replicas: number; n: number; label: string },
): Promise<ClaimRuns> {
  const { seconds, maxClaimRounds } = context.profile;
  const C = context.connections;
  await using cluster = await startCluster(options, options.replicas);
  await warm(context, cluster.servers);
  const claims: Run[] = [];
  const releases: Run[] = [];
  let free = options.n;
  let claimSeconds = 0;
  let rounds = 0;
  while (rounds < maxClaimRounds && claimSeconds < seconds.claim * 0.9 && free >= C) {
    const prefix = `c${rounds}-`;
    const round = await measure(context, cluster.servers, {
      mode: "claim",
      connections: C,
      seconds: Math.max(1, Math.ceil(seconds.claim - claimSeconds)),
      prefix,
      quota: splitEvenly(free, C),
    });
    claims.push(round);
    claimSeconds += round.load.seconds;
    free -= round.load.statuses["201"] ?? 0;
    const release = await measure(context, cluster.servers, {
      mode: "release",
      connections: C,
      seconds: seconds.release,
      set: { kind: "per-connection", prefix, counts: round.load.perConnection },
    });
    releases.push(release);
    free += release.load.statuses["204"] ?? 0;
    rounds++;
  }
  if (rounds === 0) throw new Error(`${options.label}: fewer free licenses than connections`);
  const claim = mergeRuns(claims);
  const release = mergeRuns(releases);
  log(`${options.label}: claim ${describe(claim)} [${rounds} round(s)]`);
  log(`${options.label}: release ${describe(release)}`);
  return { claim, release, rounds, serverErrors: cluster.errorLines() };
}

/**
 * Heartbeats of every node `n0` … `n<n - 1>` on `replicas` servers over a
 * database where all `n` licenses are leased to them.
 */
export async function measureClusterHeartbeats(
  context: Context,
  options: RelayServerOptions & { replicas: number; n: number; label: string },
): Promise<{ heartbeat: Run; serverErrors: number }> {
  await using cluster = await startCluster(options, options.replicas);
  await warm(context, cluster.servers);
  const heartbeat = await measureHeartbeats(context, cluster.servers, {
    connections: context.connections,
    seconds: context.profile.seconds.heartbeat,
    total: options.n,
  });
  log(`${options.label}: heartbeat ${describe(heartbeat)}`);
  return { heartbeat, serverErrors: cluster.errorLines() };
}
