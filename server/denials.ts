/**
 * Denied claims in the audit log, without letting a retry loop flood it: a
 * `410` is recorded as `license.denied` (`lib/denials.ts`) at most once per
 * node and pool per window (a minute), as decided by an in-memory limiter
 * on the server's own clock.
 *
 * @module
 */

import { recordDenial } from "../lib/denials.ts";
import type { Holder } from "../lib/holders.ts";
import type { Logger } from "../lib/logger.ts";
import type { Store } from "../lib/storage/store.ts";

/** The default window: one denial per node and pool a minute. */
export const DENIAL_INTERVAL_SECONDS = 60;

/** Keys remembered at most; beyond, the oldest are forgotten (they may be recorded again). */
export const MAX_TRACKED_KEYS = 100_000;

/**
 * Admits a key at most once per `windowSeconds`. Memory is bounded: keys
 * are kept in the order they were last admitted, so the expired ones are
 * dropped from the front as time passes, and at most `maxKeys` are kept.
 */
export class DenialLimiter {
  readonly #window: number;
  readonly #maxKeys: number;
  /** Key -> unix second it was last admitted, oldest first. */
  readonly #admitted = new Map<string, number>();

  constructor(options: { windowSeconds?: number; maxKeys?: number } = {}) {
    this.#window = options.windowSeconds ?? DENIAL_INTERVAL_SECONDS;
    this.#maxKeys = options.maxKeys ?? MAX_TRACKED_KEYS;
  }

  /**
   * Whether `key` may be recorded at `now` (unix seconds): it was not
   * admitted in the `windowSeconds` before. An admitted key counts from now.
   */
  admit(key: string, now: number): boolean {
    this.#forgetBefore(now - this.#window);
    const last = this.#admitted.get(key);
    if (last !== undefined && last > now - this.#window) return false;
    // Re-inserted, so the map stays ordered by admission time.
    this.#admitted.delete(key);
    this.#admitted.set(key, now);
    if (this.#admitted.size > this.#maxKeys) {
      this.#admitted.delete(this.#admitted.keys().next().value!);
    }
    return true;
  }

  /** How many keys are remembered (for tests of the memory bound). */
  get size(): number {
    return this.#admitted.size;
  }

  /** Drops the keys admitted at or before `cutoff`; a clock set back drops nothing. */
  #forgetBefore(cutoff: number): void {
    for (const [key, at] of this.#admitted) {
      if (at > cutoff) break;
      this.#admitted.delete(key);
    }
  }
}

/** Records denied claims, rate-limited; see {@link createDenialRecorder}. */
export interface DenialRecorder {
  /**
   * Records that `holder` (a node or user) was denied a license in `pool` (null: no
   * pool) at `now`, unless it was recorded in the last window. Never throws:
   * a failure is logged, and the client still gets its `410`.
   */
  record(holder: Holder, options: { pool: string | null; now: number }): Promise<void>;
}

/**
 * A recorder of denials into `store`'s audit log; one that does nothing when
 * the store writes no audit (`--no-audit`).
 */
export function createDenialRecorder(
  deps: { store: Store; logger: Logger; limiter?: DenialLimiter },
): DenialRecorder {
  const { store, logger } = deps;
  if (!store.auditEnabled) return { record: () => Promise.resolve() };
  const limiter = deps.limiter ?? new DenialLimiter();
  return {
    async record(holder, { pool, now }) {
      // Keys of users and nodes never collide (lib/holders.ts).
      if (!limiter.admit(JSON.stringify([pool, holder.key]), now)) return;
      try {
        await recordDenial(store, holder, { pool, now });
      } catch (error) {
        logger.error("recording a denied claim failed", {
          error: error instanceof Error ? error.message : String(error),
        });
      }
    },
  };
}
