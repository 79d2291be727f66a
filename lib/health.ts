/**
 * Whether the database accepts writes: the question `relay serve` asks before
 * it starts and on every `GET /v1/health`. A read would succeed on a
 * read-only or full database, and a write rolled back may never reach the
 * disk, so the probe commits a real change (one row, without an fsync).
 *
 * @module
 */

import type { Store } from "./storage/store.ts";

/**
 * Commits a probe write; returns null if the database took it, else why not
 * (the engine's words, without the path, e.g. `attempt to write a readonly
 * database`, `database is locked`, `disk I/O error`).
 */
export async function writeProblem(store: Store, now: number): Promise<string | null> {
  try {
    await store.transaction((tx) => tx.recordProbe(now), { durable: false });
  } catch (error) {
    return store.writeFailure() ?? (error instanceof Error ? error.message : String(error));
  }
  return store.writeFailure();
}
