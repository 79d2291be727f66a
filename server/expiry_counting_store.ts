/**
 * A {@link Store} that reports the leases that expire in its committed
 * transactions, by pool, so that `/metrics` can count them per process: the
 * ones a request meets (`license.lease_expired` written through `Tx.audit`)
 * and the ones reaped in bulk (`Tx.reapExpired`, by the reaper or by a
 * claim that found its pool exhausted). Everything else passes through.
 *
 * @module
 */

import { EventType } from "../lib/audit.ts";
import type { Store, TransactionOptions, Tx } from "../lib/storage/store.ts";

/**
 * The pool (row id; null: no pool) of each expired lease; `undefined` when
 * the pool is unknown: a bulk reap without the audit log, whose rows name it.
 */
export type ExpiredLeases = (number | null | undefined)[];

/** Wraps `store`; `onExpired` is called after each commit that expired leases. */
export function countingExpiries(
  store: Store,
  onExpired: (pools: ExpiredLeases) => void,
): Store {
  return {
    get auditEnabled() {
      return store.auditEnabled;
    },
    async transaction<T>(fn: (tx: Tx) => Promise<T>, options?: TransactionOptions): Promise<T> {
      let expired: ExpiredLeases = [];
      const value = await store.transaction((tx) => {
        expired = [];
        return fn(watched(tx, expired, store));
      }, options);
      if (expired.length > 0) onExpired(expired);
      return value;
    },
    read: (fn) => store.read(fn),
    writeFailure: () => store.writeFailure(),
    close: () => store.close(),
  };
}

/** `tx`, with `audit` and `reapExpired` noting expired leases into `expired`. */
function watched(tx: Tx, expired: ExpiredLeases, store: Store): Tx {
  const audit: Tx["audit"] = async (entry) => {
    await tx.audit(entry);
    if (entry.event === EventType.licenseLeaseExpired) expired.push(entry.poolId);
  };
  const reapExpired: Tx["reapExpired"] = async (batch) => {
    if (!store.auditEnabled) {
      const reaped = await tx.reapExpired(batch);
      // No audit rows to name the pools: each reaped node counts, pool unknown.
      for (let i = 0; i < reaped; i++) expired.push(undefined);
      return reaped;
    }
    // Writers are serialised, so the audit rows after this id are this reap's.
    const before = await tx.lastAuditId();
    const reaped = await tx.reapExpired(batch);
    if (reaped === 0) return reaped;
    const rows = await tx.auditLogRows({
      afterId: before,
      events: [EventType.licenseLeaseExpired],
      take: "first",
      limit: batch.limit,
    });
    for (const row of rows) expired.push(row.poolId);
    return reaped;
  };
  return new Proxy(tx, {
    get(target, property) {
      if (property === "audit") return audit;
      if (property === "reapExpired") return reapExpired;
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
