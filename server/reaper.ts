/**
 * The periodic reaper: every cull interval, releases expired leases in
 * bounded batches (one transaction each), yielding to pending requests
 * between batches so that no client waits behind a large reap. Started and
 * stopped by `relay serve`; correctness never depends on its timing.
 *
 * @module
 */

import { reap } from "../lib/leases.ts";
import type { Logger } from "../lib/logger.ts";
import type { Store } from "../lib/store.ts";

/** Leases reaped per transaction. */
export const REAP_BATCH = 1000;

/** Options of {@link startReaper}. */
export interface ReaperOptions {
  store: Store;
  /** Lease time to live, in seconds. */
  ttl: number;
  /** Time between runs, in milliseconds. */
  intervalMs: number;
  /** The clock, in milliseconds since the epoch. */
  now: () => number;
  logger: Logger;
}

/** A running reaper. */
export interface Reaper {
  /** Reaps everything expired now; resolves with the number of nodes reaped. */
  runOnce(): Promise<number>;
  /** Stops the timer and waits for a run in progress. */
  stop(): Promise<void>;
}

/** Starts reaping every `intervalMs`. */
export function startReaper(options: ReaperOptions): Reaper {
  let running: Promise<number> | undefined;

  async function runOnce(): Promise<number> {
    let total = 0;
    for (;;) {
      const reaped = reap(options.store, {
        now: Math.floor(options.now() / 1000),
        ttl: options.ttl,
        limit: REAP_BATCH,
      });
      total += reaped;
      if (reaped < REAP_BATCH) break;
      // Let queued requests in between batches.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    if (total > 0) options.logger.info("reaped expired leases", { count: total });
    return total;
  }

  function tick(): void {
    if (running) return;
    running = runOnce()
      .catch((error) => {
        options.logger.error("reaper failed", {
          error: error instanceof Error ? error.message : String(error),
        });
        return 0;
      })
      .finally(() => (running = undefined));
  }

  const timer = setInterval(tick, options.intervalMs);
  return {
    runOnce,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
