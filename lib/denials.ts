/**
 * Denied claims as evidence: a claim answered `410` (no license, or only
 * expired ones) is recorded as `license.denied`, so an operator can show
 * how often the pool ran out (`relay leases`, `relay audit`).
 *
 * The audit row's entity is the node, and `audit_logs.entity_id` cannot be
 * null, but a denied claim leaves no node row behind (its transaction
 * creates none, as in Keygen Relay). The denial therefore uses the node row
 * of that fingerprint if there is one, in any state, or else inserts one
 * that is deactivated from the start: it holds no lease, claims and releases
 * see no active node, `ls` and `stat` show no holder, and a later claim by
 * the node reactivates that same row, so the node keeps one id in the log.
 *
 * @module
 */

import { EventType } from "./audit.ts";
import { type Holder, HOLDER_EVENTS, nodeHolder } from "./holders.ts";
import type { Store } from "./storage/store.ts";

/**
 * Records `license.denied` for `holder` (a node's fingerprint, or a node or
 * user: the entity is the node or the user) in `pool` (null: no pool)
 * at `now` (unix seconds), in one transaction of its own, with the pool's id.
 * Does nothing when the store writes no audit (`--no-audit`): not even the
 * node row.
 */
export async function recordDenial(
  store: Store,
  holderRef: string | Holder,
  options: { pool: string | null; now: number },
): Promise<void> {
  if (!store.auditEnabled) return;
  const { now } = options;
  const holder = typeof holderRef === "string" ? nodeHolder(holderRef) : holderRef;
  const { entity } = HOLDER_EVENTS[holder.kind];
  await store.transaction(async (tx) => {
    // The claim found the pool a moment ago; pools are never deleted.
    const poolId = options.pool === null ? null : (await tx.poolByName(options.pool))?.id ?? null;
    const nodeId = (await tx.nodeByFingerprint(holder.key))?.id ??
      await tx.insertInactiveHolder(holder.key, { holderType: entity, now });
    await tx.audit({
      event: EventType.licenseDenied,
      entity,
      entityId: nodeId,
      poolId,
      now,
    });
  });
}
