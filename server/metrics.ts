/**
 * Relay's metrics, served at `GET /metrics` in the Prometheus text format
 * (`./metrics_registry.ts`). Counters and histograms count what this process
 * did since it started (several servers on one database each count their
 * own); the license gauge is read from the database at each scrape.
 *
 * | metric                                   | labels               |
 * |------------------------------------------|----------------------|
 * | `relay_licenses` gauge                   | `pool`, `state` (`leased`, `free`, `expired`) |
 * | `relay_claims_total` counter             | `pool`, `result` (`created`, `extended`, `conflict`, `exhausted`) |
 * | `relay_releases_total` counter           | `pool`, `reason` (`node`, `user`, `expired`, `operator`) |
 * | `relay_denials_total` counter            | `pool` (every 410 of a claim) |
 * | `relay_request_duration_seconds` histogram | `route`, `status` (`2xx` …) |
 * | `relay_reap_duration_seconds` histogram  |                      |
 * | `relay_build_info` gauge                 | `version`            |
 *
 * `pool=""` stands for the licenses added without a pool. No label ever
 * holds a fingerprint, key or license id. Releases by an operator
 * (`relay release`, another process) are read from the audit log at each
 * scrape: the `license.operator_released` records written since this server
 * started.
 *
 * @module
 */

import { EventType } from "../lib/audit.ts";
import type { ClaimResult } from "../lib/leases.ts";
import { AuditFollower, type FollowWindow, lastAuditId } from "../lib/audit_log.ts";
import { poolSeats } from "../lib/status.ts";
import type { Store } from "../lib/storage/store.ts";
import type { Clock } from "../lib/time.ts";
import { countingExpiries, type ExpiredLeases } from "./expiry_counting_store.ts";
import { Counter, Gauge, Histogram, Registry } from "./metrics_registry.ts";

export { EXPOSITION_CONTENT_TYPE } from "./metrics_registry.ts";

/** The `pool` label of licenses added without a pool. */
export const NO_POOL_LABEL = "";

/** The `pool` label of expired leases whose pool was removed before the scrape. */
export const UNKNOWN_POOL_LABEL = "(unknown)";

/** What a claim counts as in `relay_claims_total`. */
export type ClaimCount = "created" | "extended" | "conflict" | "exhausted";

/** Why a lease ended, in `relay_releases_total`. */
export type ReleaseReason = "node" | "user" | "expired" | "operator";

const CLAIM_RESULTS: readonly ClaimCount[] = ["created", "extended", "conflict", "exhausted"];
const RELEASE_REASONS: readonly ReleaseReason[] = ["node", "user", "expired", "operator"];
const STATES = ["leased", "free", "expired"] as const;

/** Request durations, in seconds: a heartbeat takes about a millisecond. */
const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Reap durations, in seconds: a run reaps in batches of a few milliseconds each. */
const REAP_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30];

/** Audit records of operator releases read per query at a scrape. */
const AUDIT_PAGE = 1000;

/** Options of {@link RelayMetrics.create}. */
export interface MetricsOptions {
  store: Store;
  /** Relay's version, for `relay_build_info`. */
  version: string;
  /** The clock, in unix seconds. */
  now: Clock;
  /**
   * How far back to look again for audit records committed late (PostgreSQL,
   * several writers: `lib/audit_log.ts`); null or absent where ids are seen
   * in order (SQLite).
   */
  auditWindow?: FollowWindow | null;
}

/** The metrics of one server process. */
export class RelayMetrics {
  readonly #store: Store;
  readonly #now: Clock;
  readonly #registry = new Registry();
  readonly #licenses: Gauge;
  readonly #claims: Counter;
  readonly #releases: Counter;
  readonly #denials: Counter;
  readonly #requests: Histogram;
  readonly #reaps: Histogram;
  /** Expired leases by pool id, named at the next scrape. */
  #expired: ExpiredLeases = [];
  /** Finds the operator releases written since the last scrape. */
  readonly #operatorReleases: AuditFollower;

  /** Use {@link RelayMetrics.create}. */
  private constructor(options: MetricsOptions, operatorReleases: AuditFollower) {
    this.#store = options.store;
    this.#now = options.now;
    this.#operatorReleases = operatorReleases;
    const registry = this.#registry;
    registry.register(new Gauge("relay_build_info", "Relay's version; always 1.", ["version"]))
      .set([{ labels: { version: options.version }, value: 1 }]);
    this.#licenses = registry.register(
      new Gauge(
        "relay_licenses",
        'Licenses by pool and state, read at the scrape (pool "" holds those without a pool).',
        ["pool", "state"],
      ),
    );
    this.#claims = registry.register(
      new Counter("relay_claims_total", "Claims answered, by result.", ["pool", "result"]),
    );
    this.#releases = registry.register(
      new Counter("relay_releases_total", "Leases ended, by reason.", ["pool", "reason"]),
    );
    this.#denials = registry.register(
      new Counter("relay_denials_total", "Claims answered 410 (no valid license free).", [
        "pool",
      ]),
    );
    this.#requests = registry.register(
      new Histogram("relay_request_duration_seconds", "Time to answer a request.", {
        buckets: REQUEST_BUCKETS,
        labelNames: ["route", "status"],
      }),
    );
    this.#reaps = registry.register(
      new Histogram("relay_reap_duration_seconds", "Time of a reaper run's reap of leases.", {
        buckets: REAP_BUCKETS,
      }),
    );
  }

  /**
   * The metrics of a server on `store`; counting operator releases from the
   * audit log's newest record on.
   *
   * @throws {DatabaseError} the database failed.
   */
  static async create(options: MetricsOptions): Promise<RelayMetrics> {
    const follower = await options.store.read(async (tx) => {
      const follower = new AuditFollower({
        selection: { events: [EventType.licenseOperatorReleased] },
        afterId: await lastAuditId(tx),
        batch: AUDIT_PAGE,
        window: options.auditWindow ?? null,
        clock: () => performance.now(),
      });
      await follower.start(tx);
      return follower;
    });
    return new RelayMetrics(options, follower);
  }

  /** `store`, counting the leases its transactions expire (give it to claims and the reaper). */
  countExpiries(store: Store): Store {
    return countingExpiries(store, (pools) => this.#expired.push(...pools));
  }

  /** Counts a claim's answer; a 410 (`exhausted`, `expired_only`) counts as a denial too. */
  claim(pool: string | null, result: ClaimResult["kind"]): void {
    const label = poolLabel(pool);
    const denied = result === "exhausted" || result === "expired_only";
    this.#claims.inc({ pool: label, result: denied ? "exhausted" : result });
    if (denied) this.#denials.inc({ pool: label });
  }

  /** Counts a lease released by its node (`DELETE /v1/nodes/{fingerprint}`, 204). */
  nodeRelease(pool: string | null): void {
    this.#releases.inc({ pool: poolLabel(pool), reason: "node" });
  }

  /** Counts a lease released by its user (`DELETE /v1/users/{email}`, 204). */
  userRelease(pool: string | null): void {
    this.#releases.inc({ pool: poolLabel(pool), reason: "user" });
  }

  /** Records a request's duration in seconds by route pattern and status. */
  request(route: string, status: number, seconds: number): void {
    this.#requests.observe({ route, status: `${Math.floor(status / 100)}xx` }, seconds);
  }

  /** Records a reaper run's reap duration, in seconds. */
  reap(seconds: number): void {
    this.#reaps.observe({}, seconds);
  }

  /** Denials counted so far, by pool label. */
  denials(): { pool: string; count: number }[] {
    return this.#denials.series().map(({ labels, value }) => ({ pool: labels.pool, count: value }));
  }

  /**
   * Reads the database (the license gauge, the operator releases since the
   * last scrape) and renders every metric in the text exposition format.
   *
   * @throws {DatabaseError} the database failed.
   */
  async scrape(): Promise<string> {
    const seats = await poolSeats(this.#store, this.#now());
    const names = new Map(seats.map((pool) => [pool.poolId, poolLabel(pool.pool)]));
    const expired = this.#expired;
    this.#expired = [];
    for (const poolId of expired) {
      const pool = names.get(poolId) ?? UNKNOWN_POOL_LABEL;
      this.#releases.inc({ pool, reason: "expired" });
    }
    await this.#countOperatorReleases();
    this.#licenses.set(
      seats.flatMap((pool) =>
        STATES.map((state) => ({
          labels: { pool: poolLabel(pool.pool), state },
          value: pool[state],
        }))
      ),
    );
    // Every pool's series from zero, so that rate() sees their first events.
    for (const { pool } of seats) {
      const label = poolLabel(pool);
      for (const result of CLAIM_RESULTS) this.#claims.touch({ pool: label, result });
      for (const reason of RELEASE_REASONS) this.#releases.touch({ pool: label, reason });
      this.#denials.touch({ pool: label });
    }
    return this.#registry.render();
  }

  /** Adds the `license.operator_released` records written since the last look. */
  async #countOperatorReleases(): Promise<void> {
    for (let more = true; more;) {
      const batch = await this.#store.read((tx) => this.#operatorReleases.next(tx));
      for (const record of batch.records) {
        this.#releases.inc({ pool: poolLabel(record.poolName), reason: "operator" });
      }
      more = batch.more;
    }
  }
}

/** The `pool` label of a pool name (null: no pool). */
function poolLabel(pool: string | null): string {
  return pool ?? NO_POOL_LABEL;
}
