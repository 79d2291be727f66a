/**
 * What a running Relay looks like right now, read from its database: seats
 * per pool, current leases, recent audit records, and the leased seats of the
 * last hours reconstructed from the audit log. `relay serve --ui` and
 * `/metrics` show these; none of them returns a license file or key.
 *
 * Each function is one read transaction on a consistent snapshot.
 *
 * @module
 */

import { type EventType, SEAT_GAINED_EVENTS, SEAT_LOST_EVENTS } from "./audit.ts";
import { type AuditRecord, listAudit } from "./audit_log.ts";
import type { LeaseDetail, Store, Tx } from "./storage/store.ts";

export type { AuditRecord } from "./audit_log.ts";
export type { LeaseDetail } from "./storage/store.ts";

/** The seats of one pool at a moment. */
export interface PoolSeats {
  /** Row id of the pool; null for licenses added without a pool. */
  poolId: number | null;
  /** Null for licenses added without a pool. */
  pool: string | null;
  /** Licenses with a lease that has not passed its expiry. */
  leased: number;
  /** Licenses without a (live) lease that may be handed out. */
  free: number;
  /** Licenses without a (live) lease whose file or license has expired. */
  expired: number;
}

/**
 * The seats of every pool at `now` (unix seconds), the licenses without a
 * pool first (if any), then by pool name; pools without licenses included.
 * One query, grouped in the database.
 */
export function poolSeats(store: Store, now: number): Promise<PoolSeats[]> {
  return store.read((tx) => poolSeatsIn(tx, now));
}

async function poolSeatsIn(tx: Tx, now: number): Promise<PoolSeats[]> {
  const seats: PoolSeats[] = (await tx.poolLicenseCounts({ now, within: 0 })).map((counts) => ({
    poolId: counts.poolId,
    pool: counts.poolName,
    leased: counts.leased,
    free: counts.licenses - counts.leased - counts.expiredUnleased,
    expired: counts.expiredUnleased,
  }));
  const counted = new Set(seats.map((pool) => pool.poolId));
  for (const pool of await tx.pools()) {
    if (!counted.has(pool.id)) {
      seats.push({ poolId: pool.id, pool: pool.name, leased: 0, free: 0, expired: 0 });
    }
  }
  return seats.sort((a, b) =>
    a.pool === null ? -1 : b.pool === null ? 1 : a.pool < b.pool ? -1 : a.pool > b.pool ? 1 : 0
  );
}

/** Up to `limit` current leases, soonest expiry first (leases that never expire last). */
export function currentLeases(store: Store, options: { limit: number }): Promise<LeaseDetail[]> {
  return store.read((tx) => tx.leaseDetails({ soonestFirst: true, limit: options.limit }));
}

/** Which audit records {@link auditRecords} reads. */
export interface RecentAuditFilter {
  /** Only these event types (all when absent). */
  events?: readonly EventType[];
  /** Every event type but these. */
  excludeEvents?: readonly EventType[];
  /** At most this many, the newest. */
  limit: number;
}

/** The newest audit records matching `filter`, newest first. */
export function auditRecords(store: Store, filter: RecentAuditFilter): Promise<AuditRecord[]> {
  return store.read(async (tx) => (await listAudit(tx, { ...filter, take: "last" })).reverse());
}

/** The events that change how many seats are leased (see {@link seatHistory}). */
export const SEAT_EVENTS: readonly EventType[] = [...SEAT_GAINED_EVENTS, ...SEAT_LOST_EVENTS];

/** Leased seats from one moment on (a step chart's point). */
export interface SeatPoint {
  /** Unix seconds. */
  at: number;
  leased: number;
}

/**
 * Leased seats (all pools) over the `window` seconds before `now`, one point
 * per `bucketSeconds` bucket with a change, plus the window's start and
 * `now`. Reconstructed backwards from the licenses leased now, undoing the
 * audit log's leases and releases (`license.leased`, `license.released`,
 * `license.lease_expired`, `license.operator_released`): it needs the audit
 * log, and reads flat where it was off or pruned. Expired leases not yet
 * reaped count as ended at `now`, but as held before their reap.
 */
export function seatHistory(
  store: Store,
  options: { now: number; window: number; bucketSeconds: number },
): Promise<SeatPoint[]> {
  const { now, window, bucketSeconds } = options;
  return store.read(async (tx) => {
    const since = now - window;
    const changes = await tx.seatChanges({ since, bucketSeconds });
    let leased = 0;
    for (const seats of await poolSeatsIn(tx, now)) leased += seats.leased;
    const points: SeatPoint[] = [{ at: now, leased }];
    for (let i = changes.length - 1; i >= 0; i--) {
      const { at, delta } = changes[i];
      // The bucket's level holds from its start; before it, the change is undone.
      points.push({ at: Math.max(at, since), leased });
      leased = Math.max(0, leased - delta);
    }
    points.push({ at: since, leased });
    return points.reverse();
  });
}
