/**
 * The periodic reaper: every cull interval it releases expired leases and,
 * with an audit retention, deletes audit records older than it. Both work in
 * bounded batches (one transaction each), yielding to pending requests
 * every 20 ms or so, so no client waits long behind a large reap. Started and stopped
 * by `relay serve`; correctness never depends on its timing.
 *
 * @module
 */

import { reap } from "../lib/leases.ts";
import type { Logger } from "../lib/logger.ts";
import { pruneAuditLog } from "../lib/retention.ts";
import type { Store } from "../lib/storage/store.ts";
import type { Clock } from "../lib/time.ts";

/** Rows handled per transaction (a few milliseconds of work each). */
export const REAP_BATCH = 250;

/** Longest run of batches, in ms, before the reaper lets waiting requests in. */
export const YIELD_AFTER_MS = 20;

/** Options of {@link startReaper}. */
export interface ReaperOptions {
  store: Store;
  /** Lease time to live in seconds; null: leases never expire, nothing to reap. */
  ttl: number | null;
  /** Audit records older than this many seconds are deleted; null keeps them. */
  auditRetention?: number | null;
  /** Time between runs, in milliseconds. */
  intervalMs: number;
  /** The clock, in unix seconds. */
  now: Clock;
  logger: Logger;
  /** Called after a run that released leases (claims waiting for a seat try again). */
  onReaped?: () => void;
  /** Told how long each run's reap of expired leases took, in seconds. */
  onReap?: (seconds: number) => void;
}

/** What one run did. */
export interface ReapReport {
  /** Nodes whose lease expired and was released. */
  reaped: number;
  /** Audit records deleted by the retention. */
  pruned: number;
}

/** A running reaper. */
export interface Reaper {
  /** Does one full run now. */
  runOnce(): Promise<ReapReport>;
  /** Stops the timer and waits for a run in progress. */
  stop(): Promise<void>;
}

/** Starts a run every `intervalMs`. */
export function startReaper(options: ReaperOptions): Reaper {
  let running: Promise<unknown> | undefined;

  /**
   * Repeats `batch` while it fills, yielding to pending requests at least
   * every {@link YIELD_AFTER_MS}; returns the total. Not after every batch: a
   * yield that lets the server read its sockets is a timer, which takes about
   * 2 ms however short it is asked to be, as long as two batches.
   */
  async function drain(batch: () => Promise<number>): Promise<number> {
    let total = 0;
    let since = performance.now();
    for (;;) {
      const done = await batch();
      total += done;
      if (done < REAP_BATCH) return total;
      if (performance.now() - since >= YIELD_AFTER_MS) {
        await new Promise((resolve) => setTimeout(resolve, 0));
        since = performance.now();
      }
    }
  }

  async function runOnce(): Promise<ReapReport> {
    const { store, ttl, auditRetention, now } = options;
    const started = performance.now();
    const reaped = ttl === null
      ? 0
      : await drain(() => reap(store, { now: now(), ttl, limit: REAP_BATCH }));
    if (ttl !== null) options.onReap?.((performance.now() - started) / 1000);
    const pruned = auditRetention == null
      ? 0
      : await drain(() =>
        pruneAuditLog(store, { now: now(), retention: auditRetention, limit: REAP_BATCH })
      );
    // Debug, as Keygen Relay logs its reaper: each run says what it did.
    const { logger } = options;
    const duration_ms = Math.round((performance.now() - started) * 100) / 100;
    if (reaped > 0) logger.debug("reaped expired leases", { count: reaped, duration_ms });
    if (pruned > 0) logger.debug("pruned audit records", { count: pruned, duration_ms });
    if (reaped === 0 && pruned === 0) {
      logger.debug("reaper found nothing to do", { duration_ms });
    }
    if (reaped > 0) options.onReaped?.();
    return { reaped, pruned };
  }

  function tick(): void {
    if (running) return;
    running = runOnce()
      .catch((error) => {
        options.logger.error("reaper failed", {
          error: error instanceof Error ? error.message : String(error),
        });
      })
      .finally(() => (running = undefined));
  }

  const timer = setInterval(tick, options.intervalMs);
  options.logger.debug("reaper started", {
    ttl: options.ttl === null ? "never expire" : `${options.ttl}s`,
    interval_ms: options.intervalMs,
    audit_retention: options.auditRetention == null ? "forever" : `${options.auditRetention}s`,
  });
  return {
    runOnce,
    async stop() {
      clearInterval(timer);
      await running;
      options.logger.debug("reaper stopped");
    },
  };
}
