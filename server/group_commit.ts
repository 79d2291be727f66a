/**
 * Group commit for the API: lease operations that arrive together are run in
 * one database transaction and share one fsync, instead of one fsync each.
 *
 * Each operation is still its own atomic unit (a savepoint, see
 * `Store.group`), and no caller learns its result before the group has
 * committed, so nothing is acknowledged that a crash could lose. Under load
 * many requests share each commit; a lone request waits only for the end of
 * the current event-loop turn.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { Store } from "../lib/store.ts";

/** Runs a synchronous store operation in the next group; resolves after the commit. */
export type Committer = <T>(operation: () => T) => Promise<T>;

interface Pending {
  operation: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** Largest group: bounds the time one commit holds the write lock. */
export const MAX_GROUP = 256;

/** A {@link Committer} on `store`. */
export function createCommitter(store: Store): Committer {
  const queue: Pending[] = [];
  let scheduled = false;

  function flush(): void {
    scheduled = false;
    const group = queue.splice(0, MAX_GROUP);
    if (queue.length > 0) schedule();
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      store.group(() => {
        for (const { operation } of group) {
          try {
            outcomes.push({ ok: true, value: operation() });
          } catch (error) {
            outcomes.push({ ok: false, value: error });
          }
        }
      });
    } catch (error) {
      // The commit failed: no operation of the group took effect.
      for (const pending of group) pending.reject(error);
      return;
    }
    group.forEach((pending, i) => {
      const { ok, value } = outcomes[i];
      if (ok) pending.resolve(value);
      else pending.reject(value);
    });
  }

  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    // After the requests already read from the sockets have queued theirs;
    // setImmediate waits microseconds where setTimeout(0) waits milliseconds.
    setImmediate(flush);
  }

  return function commit<T>(operation: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      queue.push({ operation, resolve: resolve as (value: unknown) => void, reject });
      schedule();
    });
  };
}
