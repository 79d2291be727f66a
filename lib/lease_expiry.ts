/**
 * When a lease runs out. A lease stores the expiry it was granted or extended
 * with (`nodes.lease_expires_at`); one stored without it (by Keygen Relay, or
 * before the column existed) runs out `ttl` after its last heartbeat, by the
 * reader's ttl; without heartbeats, leases never run out.
 *
 * @module
 */

import type { ActiveNode } from "./storage/store.ts";

/** The parts of the server's lease rules that decide expiry (`LeasePolicy`). */
export interface ExpiryPolicy {
  /** Lease time to live after each heartbeat, in seconds. */
  ttl: number;
  /** Whether leases are extended by heartbeats and run out without them. */
  heartbeats: boolean;
}

/**
 * Whether the node's lease has run out: its stored expiry has passed, or,
 * without one, `ttl` seconds have passed since its last heartbeat (with
 * heartbeats; without them such a lease never expires).
 */
export function isExpired(
  node: ActiveNode,
  { now, policy }: { now: number; policy: ExpiryPolicy },
): boolean {
  if (node.leaseExpiresAt !== null) return node.leaseExpiresAt <= now;
  const cutoff = legacyCutoff(now, policy);
  return cutoff !== null && node.lastHeartbeatAt !== null && node.lastHeartbeatAt <= cutoff;
}

/** The expiry a lease granted or extended at `now` is stored with; null: never. */
export function storedExpiry(now: number, policy: ExpiryPolicy): number | null {
  return policy.heartbeats ? now + policy.ttl : null;
}

/** How long a lease stored without an expiry lasts after its last heartbeat; null: forever. */
export function legacyTtl(policy: ExpiryPolicy): number | null {
  return policy.heartbeats ? policy.ttl : null;
}

/**
 * For leases stored without an expiry: the last heartbeat at or before which
 * they have expired; null: they never expire (no heartbeats).
 */
export function legacyCutoff(now: number, policy: ExpiryPolicy): number | null {
  return policy.heartbeats ? now - policy.ttl : null;
}
