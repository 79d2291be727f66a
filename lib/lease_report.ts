/**
 * What an operator sees of the leases (`relay leases`): every lease held,
 * with its node, license, pool and times, and each pool summed up as
 * FlexNet's `lmstat` does (licenses, leased, free, files running out,
 * denied claims). A lease of a multi-seat license names the license and says
 * how many of its seats are leased; the pool counts count seats (each seat
 * row is leased, freed and expires as a license of its own).
 *
 * The functions take the transaction handle, so a status page or metrics can
 * read the same rows inside their own snapshot; {@link leaseReport} is the
 * one-call form for the CLI.
 *
 * @module
 */

import { EventType } from "./audit.ts";
import { PoolNotFoundError } from "./errors.ts";
import { type LeaseState, leaseState } from "./licenses.ts";
import type { LeaseDetail, PoolLicenseCounts, Store, Tx } from "./storage/store.ts";

/** How far back the summary counts denied claims: a day, in seconds. */
export const DENIAL_SUMMARY_SECONDS = 86_400;

/** A lease as {@link listLeases} returns it: the stored row and its state at `now`. */
export interface Lease extends LeaseDetail {
  /**
   * `leased` (live), or `expired`: past its stored expiry and not reaped yet.
   * A lease stored without an expiry (Keygen Relay's, or `--no-heartbeats`)
   * is live, as `relay ls` counts it: only the serving relay knows its ttl.
   */
  state: Exclude<LeaseState, "free">;
  /**
   * How many seats of its license are leased (1 for a single-seat license);
   * see {@link LeaseDetail.seats} for how many it has.
   */
  seatsUsed: number;
}

/** One pool summed up at a moment: {@link PoolLicenseCounts} and its denials. */
export interface PoolSummary extends PoolLicenseCounts {
  /** `license.denied` audit rows of the last {@link DENIAL_SUMMARY_SECONDS}. */
  denials: number;
}

/** Everything `relay leases` shows. */
export interface LeaseReport {
  leases: Lease[];
  pools: PoolSummary[];
}

/**
 * Every lease held (or those of one pool), in license order, with its state
 * at `now` (unix seconds). Expired leases the reaper has not ended yet are
 * included, marked `expired`.
 */
export async function listLeases(
  tx: Tx,
  options: { poolId?: number; now: number },
): Promise<Lease[]> {
  const rows = await tx.leaseDetails({ poolId: options.poolId });
  // Every seat of a license is in its pool: the rows hold all of its leases.
  const used = new Map<string, number>();
  for (const row of rows) used.set(row.licenseGuid, (used.get(row.licenseGuid) ?? 0) + 1);
  return rows.map((row) => ({
    ...row,
    state: leaseState(row, options.now) === "expired" ? "expired" : "leased",
    seatsUsed: used.get(row.licenseGuid)!,
  }));
}

/**
 * Each pool's licenses counted at `now` (unix seconds), with the claims
 * denied in the day before it: every pool, those without licenses too, or
 * only `poolId`; the licenses without a pool first (pool null), when there
 * are any. A file is `expiring` when it stops being valid within `within`
 * seconds.
 */
export async function poolSummaries(
  tx: Tx,
  options: { poolId?: number; now: number; within: number },
): Promise<PoolSummary[]> {
  const { now, within, poolId } = options;
  const counts = await tx.poolLicenseCounts({ now, within });
  const denials = new Map(
    (await tx.auditEventCounts(EventType.licenseDenied, now - DENIAL_SUMMARY_SECONDS))
      .map(({ poolId, count }) => [poolId, count]),
  );
  const byPool = new Map(counts.map((row) => [row.poolId, row]));
  const summaries: PoolSummary[] = [];
  const add = (id: number | null, name: string | null) => {
    const row = byPool.get(id) ?? emptyCounts(id, name);
    summaries.push({ ...row, denials: denials.get(id) ?? 0 });
  };
  if (byPool.has(null) && poolId === undefined) add(null, null);
  for (const pool of await tx.pools()) {
    if (poolId === undefined || pool.id === poolId) add(pool.id, pool.name);
  }
  return summaries;
}

/**
 * {@link listLeases} and {@link poolSummaries} from one snapshot, for all
 * pools or the one named `pool`.
 *
 * @throws {PoolNotFoundError} `pool` names no pool.
 */
export function leaseReport(
  store: Store,
  options: { pool?: string; now: number; within: number },
): Promise<LeaseReport> {
  const { now, within } = options;
  return store.read(async (tx) => {
    let poolId: number | undefined;
    if (options.pool !== undefined) {
      const pool = await tx.poolByName(options.pool);
      if (!pool) throw new PoolNotFoundError(`Pool "${options.pool}" not found`);
      poolId = pool.id;
    }
    return {
      leases: await listLeases(tx, { poolId, now }),
      pools: await poolSummaries(tx, { poolId, now, within }),
    };
  });
}

function emptyCounts(poolId: number | null, poolName: string | null): PoolLicenseCounts {
  return {
    poolId,
    poolName,
    licenses: 0,
    leased: 0,
    expiredLeases: 0,
    free: 0,
    expiring: 0,
    expired: 0,
    expiredUnleased: 0,
  };
}
