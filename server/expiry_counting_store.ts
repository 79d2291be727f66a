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

/** The pool (row id; null: no pool) of each expired lease. */
export type ExpiredLeases = (number | null)[];

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
        const watch = watcherOf(tx);
        // Bodies run one at a time: this one's expiries go to its own list.
        watch.expired = expired = [];
        return fn(watch.tx);
      }, options);
      if (expired.length > 0) onExpired(expired);
      return value;
    },
    read: (fn) => store.read(fn),
    writeFailure: () => store.writeFailure(),
    close: () => store.close(),
  };
}

/** A `tx` with `audit` and `reapExpired` noting expired leases into `expired`. */
interface Watcher {
  tx: Tx;
  /** The list of the body running now. */
  expired: ExpiredLeases;
}

/**
 * One {@link Watcher} per `tx`, made on first use: an engine hands the same
 * `tx` to every transaction of a connection. A plain object of bound methods,
 * not a Proxy, whose traps cost more on every statement than the counting.
 */
const WATCHERS = new WeakMap<Tx, Watcher>();

function watcherOf(tx: Tx): Watcher {
  const watcher = WATCHERS.get(tx);
  if (watcher !== undefined) return watcher;
  const methods: Record<string, unknown> = {};
  for (
    let proto = Object.getPrototypeOf(tx);
    proto !== null && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const value = (tx as unknown as Record<string, unknown>)[name];
      if (name !== "constructor" && !(name in methods) && typeof value === "function") {
        methods[name] = value.bind(tx);
      }
    }
  }
  const state: Watcher = { tx: methods as unknown as Tx, expired: [] };
  const audit: Tx["audit"] = async (entry) => {
    await tx.audit(entry);
    if (entry.event === EventType.licenseLeaseExpired) state.expired.push(entry.poolId);
  };
  const reapExpired: Tx["reapExpired"] = async (batch) => {
    const reaped = await tx.reapExpired(batch);
    state.expired.push(...reaped.leasePools);
    return reaped;
  };
  methods.audit = audit;
  methods.reapExpired = reapExpired;
  WATCHERS.set(tx, state);
  return state;
}
