/**
 * Audit retention: audit records older than the configured retention are
 * deleted in bounded batches, one transaction each (`relay serve
 * --audit-retention`, run by the reaper).
 *
 * @module
 */

import type { Store } from "./storage/store.ts";

/**
 * Deletes up to `limit` audit records older than `retention` seconds before
 * `now`, in one transaction; returns how many. Call again while it returns
 * `limit`.
 */
export function pruneAuditLog(
  store: Store,
  options: { now: number; retention: number; limit: number },
): Promise<number> {
  return store.transaction((tx) =>
    tx.deleteAuditBefore(options.now - options.retention, options.limit)
  );
}
