/**
 * What one load run asks of each connection, shared by the two load
 * generators of `scripts/bench.ts` (wrk with a generated Lua script, and the
 * Deno client of `client.ts`), so both send exactly the same requests.
 *
 * Every connection `c` (0 … connections-1) runs its own strictly sequential
 * loop: it sends request `k` only after the answer to request `k - 1`, so a
 * connection's state machine (claim, heartbeats, release) never races itself.
 * With wrk this means one connection per thread (`-t C -c C`).
 *
 * @module
 */

/** What the requests of a run are. */
export type LoadMode =
  /** PUT a fresh fingerprint per request: `<prefix><c>-<k>`; each a claim (201). */
  | "claim"
  /** PUT, round-robin, the connection's share of a set of leased fingerprints (202). */
  | "heartbeat"
  /** DELETE each fingerprint of the connection's share once (204). */
  | "release"
  /** PUT ×4 then DELETE per fresh fingerprint `<prefix><c>-<k>`: claim, 3 heartbeats, release. */
  | "cycle"
  /** DELETE fresh fingerprints nobody holds (404): warms the HTTP path and the SQL path. */
  | "warm";

/** A set of fingerprints, split between connections. */
export type FingerprintSet =
  /** `<prefix><i>` for i < total; connection c gets i ≡ c (mod connections). */
  | { kind: "range"; prefix: string; total: number }
  /** Connection c gets `<prefix><c>-<j>` for j < counts[c]. */
  | { kind: "per-connection"; prefix: string; counts: number[] };

/** One load run. */
export interface LoadPlan {
  mode: LoadMode;
  connections: number;
  /** Upper bound of the run, whole seconds (wrk's `-d`). */
  seconds: number;
  /** claim, cycle, warm: fingerprint prefix. */
  prefix?: string;
  /** claim: how many claims connection c makes at most (then it stops). */
  quota?: number[];
  /** heartbeat, release: the fingerprints. */
  set?: FingerprintSet;
}

/** What one connection did. */
export interface ConnectionResult {
  id: number;
  /** Answers received (= requests completed). */
  received: number;
  /** Monotonic microseconds of the first request sent and the last answer received. */
  first: number;
  last: number;
  /** Slowest answer, microseconds. */
  max: number;
  /** Answers by HTTP status. */
  statuses: Record<string, number>;
  /** Latency histogram: bucket (microseconds, see {@link bucketOf}) → count. */
  hist: Record<string, number>;
}

/** What a load generator reports for one run. */
export interface RawLoadResult {
  connections: ConnectionResult[];
  /** Socket errors (connect, read, write, timeout) the generator saw. */
  errors: Record<string, number>;
}

/**
 * Latency bucket of a value in microseconds: 1 µs below 1 ms, 10 µs below
 * 10 ms, 100 µs below 100 ms, then 1 ms (under 1 % error everywhere).
 */
export function bucketOf(us: number): number {
  if (us < 1_000) return Math.floor(us);
  if (us < 10_000) return Math.floor(us / 10) * 10;
  if (us < 100_000) return Math.floor(us / 100) * 100;
  return Math.floor(us / 1_000) * 1_000;
}

/** Fingerprints of connection `c` in `set`. */
export function fingerprintsOf(set: FingerprintSet, c: number, connections: number): string[] {
  const names: string[] = [];
  if (set.kind === "range") {
    for (let i = c; i < set.total; i += connections) names.push(`${set.prefix}${i}`);
  } else {
    const count = set.counts[c] ?? 0;
    for (let j = 0; j < count; j++) names.push(`${set.prefix}${c}-${j}`);
  }
  return names;
}

/**
 * How many answers connection `c` stops after (0: it sends nothing and stops
 * at once; undefined: it runs until the time is up).
 */
export function limitOf(plan: LoadPlan, c: number): number | undefined {
  if (plan.mode === "claim") return plan.quota?.[c];
  if (plan.mode === "release") return fingerprintsOf(plan.set!, c, plan.connections).length;
  return undefined;
}

/** The method and path of request `k` of connection `c`; `names` from {@link fingerprintsOf}. */
export function requestOf(
  plan: LoadPlan,
  c: number,
  k: number,
  names: string[],
): { method: string; path: string } {
  switch (plan.mode) {
    case "claim":
      return { method: "PUT", path: `/v1/nodes/${plan.prefix}${c}-${k}` };
    case "heartbeat":
      return { method: "PUT", path: `/v1/nodes/${names[k % names.length]}` };
    case "release":
      return { method: "DELETE", path: `/v1/nodes/${names[k]}` };
    case "cycle":
      return {
        method: k % 5 === 4 ? "DELETE" : "PUT",
        path: `/v1/nodes/${plan.prefix}${c}-${Math.floor(k / 5)}`,
      };
    case "warm":
      return { method: "DELETE", path: `/v1/nodes/${plan.prefix}${c}-${k}` };
  }
}

/**
 * `total` split into `parts` near-equal whole shares, the larger ones first
 * (e.g. per-connection claim quotas that together take every free license).
 */
export function splitEvenly(total: number, parts: number): number[] {
  return Array.from(
    { length: parts },
    (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0),
  );
}

/** The prefix of the one stdout line in which a load generator or probe prints its result. */
export const RESULT_LINE_PREFIX = "RELAY_BENCH_JSON ";

/** The JSON value of the first result line among `lines`, if any. */
export function resultOf<T>(lines: string[]): T | undefined {
  const line = lines.find((l) => l.startsWith(RESULT_LINE_PREFIX));
  return line === undefined ? undefined : JSON.parse(line.slice(RESULT_LINE_PREFIX.length)) as T;
}

/** What a probe does: one connection per node, alternating health checks and its heartbeat. */
export interface ProbeSpec {
  nodes: string[];
  /** At most this long; it stops earlier when its stdin closes. */
  seconds: number;
}

/** What a probe prints: each request's start (epoch ms), latency (ms) and status. */
export interface ProbeResult {
  samples: [number, number, number][];
}

/**
 * The one argument of a `client.ts` process, as JSON: connections of a plan,
 * or a probe. With `ports` (several replicas of one cluster), connection `c`
 * talks to `ports[c % ports.length]` instead of `port`.
 */
export type ClientSpec =
  | { port: number; ports?: number[]; plan: LoadPlan; ids: number[] }
  | { port: number; probe: ProbeSpec };

/**
 * The port connection `c` of a run talks to: the servers of a cluster take
 * the connections in turn (c mod the number of servers), as wrk's threads and
 * the Deno client's connections both do.
 */
export function portOf(ports: readonly number[], c: number): number {
  return ports[c % ports.length];
}
