/**
 * Lease strategies: which free license a claim gets. Only licenses valid at
 * the moment of the claim qualify (see `lib/expiry.ts`); among them `fifo`
 * takes the one added first, `lifo` the one added last, `rand` any with the
 * same probability, each in a few indexed lookups.
 *
 * On an engine that counts free licenses (SQLite's `free_counts`), `rand` is
 * exactly uniform. On one that does not (PostgreSQL: a count is a row that
 * every claim of every server would lock), `rand` is uniform while at least
 * one id in {@link REJECTION_DENSITY} of the range of free ids is free; below
 * that it may take the first valid free license after a uniformly random id
 * instead, favouring licenses that follow long leased stretches. Either way
 * a claim costs O(log n), never a scan.
 *
 * @module
 */

import type { Tx } from "./storage/store.ts";

/** How a free license is chosen: first added, last added, or uniformly at random. */
export type Strategy = "fifo" | "lifo" | "rand";

/** Every {@link Strategy}. */
export const STRATEGIES: readonly Strategy[] = ["fifo", "lifo", "rand"];

/** `rand` samples ids while at least 1 in this many of the range is free. */
const REJECTION_DENSITY = 8;

/**
 * Tries before `rand` takes the exact walk instead: at the lowest density,
 * all of them miss 1.4 % of the time.
 */
const REJECTION_TRIES = 32;

/**
 * Walks of `free_counts` that `rand` tries before it indexes the valid free
 * licenses themselves: all miss only when most free licenses have expired
 * (with half of them expired, 0.4 % of the time).
 */
const WALK_TRIES = 8;

/** Ids that `rand` samples per round trip on an engine without counts. */
const SAMPLE_BATCH = 32;

/** Rounds of {@link SAMPLE_BATCH} samples before the pivot: all miss 0.02 % of the time at 1 in 8. */
const SAMPLE_BATCHES = 2;

/**
 * A free license of the pool valid at `now`, chosen by the strategy; undefined
 * if there is none. `rand` chooses each valid free license with the same
 * probability.
 */
export async function pickFreeLicense(
  tx: Tx,
  { poolId, strategy, random = Math.random, now }: {
    poolId: number | null;
    strategy: Strategy;
    random?: () => number;
    now: number;
  },
): Promise<number | undefined> {
  // One indexed lookup; a pool whose free licenses have all expired costs no more.
  if (!(await tx.hasValidFreeLicense(poolId, now))) return undefined;
  if (strategy === "fifo") {
    return await tx.firstFreeLicense(poolId, { order: "first", validAt: now });
  }
  if (strategy === "lifo") {
    return await tx.firstFreeLicense(poolId, { order: "last", validAt: now });
  }

  // `rand`: each step below either returns a license drawn uniformly among
  // the valid free ones, or moves on with a probability that does not depend
  // on which license it would have drawn; so the result is uniform too.
  const free = await tx.freeLicenseCount(poolId);
  if (free === null) return await sampleUncounted(tx, { poolId, random, now });
  const range = await tx.freeLicenseIdRange(poolId);
  if (range) {
    // Rejection sampling: a uniformly random id of the range, kept if it is a
    // valid free license of the pool, is a uniformly random valid free
    // license. One indexed lookup per try, whatever the pool's size, while
    // at least one id in REJECTION_DENSITY is free; the walk below otherwise.
    const span = range.high - range.low + 1;
    if (span <= REJECTION_DENSITY * free) {
      for (let i = 0; i < REJECTION_TRIES; i++) {
        const id = range.low + Math.floor(random() * span);
        if (await tx.isFreeLicense(poolId, { id, validAt: now })) return id;
      }
    }
  }
  // The k-th free license in id order, k uniformly random, is a uniformly
  // random free license; kept if it is valid. `free_counts` counts expired
  // free licenses too, so this can miss.
  for (let i = 0; i < WALK_TRIES; i++) {
    const id = await tx.freeLicenseAt(poolId, Math.min(free - 1, Math.floor(random() * free)));
    if (id !== undefined && await tx.isFreeLicense(poolId, { id, validAt: now })) return id;
  }
  // Most free licenses have expired: index the valid ones themselves.
  const valid = await tx.validFreeLicenseCount(poolId, now);
  const index = Math.min(valid - 1, Math.floor(random() * valid));
  return await tx.validFreeLicenseAt(poolId, { index, validAt: now });
}

/**
 * `rand` without a count of free licenses: rejection sampling in batches of
 * ids (the first valid free one of a batch, in sampling order, is uniform as
 * a single sample is), then the first valid free license at or after a
 * uniformly random id of the range, which never misses one that is free.
 */
async function sampleUncounted(
  tx: Tx,
  { poolId, random, now }: { poolId: number | null; random: () => number; now: number },
): Promise<number | undefined> {
  const range = await tx.freeLicenseIdRange(poolId);
  if (!range) return undefined;
  const span = range.high - range.low + 1;
  const sample = () => range.low + Math.floor(random() * span);
  for (let i = 0; i < SAMPLE_BATCHES; i++) {
    const ids = Array.from({ length: SAMPLE_BATCH }, sample);
    const id = await tx.firstFreeLicenseAmong(poolId, { ids, validAt: now });
    if (id !== undefined) return id;
  }
  return await tx.freeLicenseFrom(poolId, { id: sample(), validAt: now });
}
