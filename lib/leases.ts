/**
 * Leases: claim (or extend), release and reap, each one transaction with its
 * audit rows. This module knows nothing of HTTP; `server/app.ts` turns its
 * results into responses.
 *
 * A lease lasts `ttl` seconds from the node's last heartbeat, and that expiry
 * is stored with it (`nodes.lease_expires_at`), so every reader (claims,
 * the reaper of any server sharing the database, `ls`) agrees on it whatever
 * its own `--ttl`. A lease stored without one (by Keygen Relay, or before
 * the column existed) expires `ttl` after its last heartbeat, by the reader's
 * ttl; without heartbeats, leases never expire. Correctness never waits for the
 * reaper: a claim that finds no free license first reaps expired leases, and
 * a node whose own lease expired gets a new lease (201), never a silent
 * extension of one that could already have been given away.
 *
 * Only licenses valid at the moment of the claim are handed out: neither the
 * file's `meta.expiry` nor the license's own expiry has passed
 * (`lib/expiry.ts`), since the application's verifier refuses an expired
 * file. A node whose leased license has expired is moved to a valid one.
 *
 * @module
 */

import { EntityType, EventType } from "./audit.ts";
import { HolderConflictError, PoolNotFoundError } from "./errors.ts";
import { isValidAt } from "./expiry.ts";
import { type Holder, HOLDER_EVENTS, type HolderKind, nodeHolder } from "./holders.ts";
import { isExpired, legacyCutoff, legacyTtl, storedExpiry } from "./lease_expiry.ts";
import { pickFreeLicense } from "./strategy.ts";
import type {
  ClaimResult,
  LeaseLicense,
  LeaseOptions,
  LookupResult,
  ReleaseResult,
} from "./lease_results.ts";
import type { LeasedLicense, Store, Tx } from "./storage/store.ts";

export { STRATEGIES, type Strategy } from "./strategy.ts";

export type {
  ClaimResult,
  LeaseLicense,
  LeaseOptions,
  LeasePolicy,
  LookupResult,
  ReleaseResult,
} from "./lease_results.ts";

/** Expired leases reaped by one claim that finds its pool exhausted, per batch. */
const CLAIM_REAP_BATCH = 100;

/**
 * Who a lease operation is for: a {@link Holder} (a node or a user,
 * `lib/holders.ts`), or a string, the fingerprint of a node.
 */
export type HolderRef = string | Holder;

function holderOf(ref: HolderRef): Holder {
  return typeof ref === "string" ? nodeHolder(ref) : ref;
}

/**
 * Claims a lease for `holder` (a node's fingerprint, or a node or user) in
 * one transaction. Below, "node" stands for either: a user's lease follows
 * the same rules, with `user.*` events in place of `node.*`.
 *
 * - the node leases a live license in another pool: `conflict`.
 * - the node leases a live license in this pool whose file or license has
 *   expired: that license is released (`license.released`) and the node gets
 *   another, as below; if there is none, the node is deactivated
 *   (`node.deactivated`). With or without heartbeats: the node cannot use
 *   the file it holds.
 * - the node leases a live, valid license in this pool: with heartbeats, the
 *   lease is extended (`extended`); without, `conflict`.
 * - otherwise a free license valid at `now` is leased by the strategy
 *   (`created`), after reaping expired leases if none is free; if there is
 *   still none: `expired_only` when free licenses are left but all of them
 *   have expired, else `exhausted`.
 *
 * @throws {PoolNotFoundError} `pool` names no pool.
 * @throws {HolderConflictError} the holder's key is stored for a holder of
 *   another kind (not written by Relay: `lib/holders.ts`); nothing changes.
 */
export function claim(
  store: Store,
  holder: HolderRef,
  options: LeaseOptions,
): Promise<ClaimResult> {
  return store.transaction((tx) => claimIn(tx, holderOf(holder), options));
}

/** {@link claim}'s body, inside the caller's transaction. */
async function claimIn(tx: Tx, holder: Holder, options: LeaseOptions): Promise<ClaimResult> {
  const { now, policy } = options;
  const events = HOLDER_EVENTS[holder.kind];
  // Claims of one holder on several servers take turns; other holders' never wait.
  await tx.lockHolder(holder.key);
  const poolId = await resolvePool(tx, options.pool);
  let node = await tx.activeNode(holder.key);
  const held = node && await tx.licenseLeasedBy(node.id);
  // The node gave up a license whose file expired: it holds none now.
  let moved = false;
  if (node && held) {
    if (isExpired(node, { now, policy })) {
      await expireLease(tx, { nodeId: node.id, held, now, holder: holder.kind });
      node = undefined;
    } else if (held.poolId !== poolId) {
      return { kind: "conflict" };
    } else if (!isValidAt(held, now)) {
      await tx.releaseLicense(held.id, now);
      await tx.audit({
        event: EventType.licenseReleased,
        entity: EntityType.license,
        entityId: held.licenseId,
        poolId,
        now,
      });
      moved = true;
    } else if (!policy.heartbeats) {
      return { kind: "conflict" };
    } else {
      await tx.heartbeat(node.id, { now, expiresAt: storedExpiry(now, policy) });
      await tx.audit({
        event: EventType.licenseLeaseExtended,
        entity: EntityType.license,
        entityId: held.licenseId,
        poolId,
        now,
      });
      await tx.audit({
        event: events.heartbeatPing,
        entity: events.entity,
        entityId: node.id,
        poolId,
        now,
      });
      const extended = { expiresAt: now + policy.ttl, license: leaseLicense(held) };
      if (holder.kind === "node") return { kind: "extended", ...extended };
      const grant = (await tx.licenseGrant(held.id))!;
      return {
        kind: "extended",
        ...extended,
        grant: { licenseFile: grant.file, licenseKey: grant.key },
      };
    }
  }

  const pick = { poolId, strategy: policy.strategy, random: options.random, now };
  let licenseId = await pickFreeLicense(tx, pick);
  while (licenseId === undefined) {
    const batch = { now, cutoff: legacyCutoff(now, policy), limit: CLAIM_REAP_BATCH };
    if (await tx.reapExpired(batch) === 0) break;
    licenseId = await pickFreeLicense(tx, pick);
  }
  if (licenseId === undefined) {
    if (node && moved) {
      await tx.deactivateNode(node.id, now);
      await tx.audit({
        event: events.deactivated,
        entity: events.entity,
        entityId: node.id,
        poolId,
        now,
      });
    }
    // Free licenses are left, but none is valid: say so, not "none available".
    const kind = await tx.hasFreeLicense(poolId) ? "expired_only" : "exhausted";
    return { kind, retryAt: await tx.nextLeaseExpiry(poolId, legacyTtl(policy)) };
  }

  let nodeId = node?.id;
  if (nodeId === undefined) {
    nodeId = await tx.activateHolder(holder.key, {
      now,
      expiresAt: storedExpiry(now, policy),
      holderType: events.entity,
    });
    // The key is stored for a holder of another kind: never hand it this one's lease.
    if (nodeId === undefined) {
      throw new HolderConflictError(`The key of this ${holder.kind} is stored for another kind`);
    }
    await tx.audit({
      event: events.activated,
      entity: events.entity,
      entityId: nodeId,
      poolId,
      now,
    });
  } else {
    await tx.heartbeat(nodeId, { now, expiresAt: storedExpiry(now, policy) });
  }
  const grant = (await tx.leaseLicense(licenseId, { nodeId, now }))!;
  await tx.audit({
    event: EventType.licenseLeased,
    entity: EntityType.license,
    entityId: grant.licenseId,
    poolId,
    now,
  });
  await tx.audit({
    event: events.heartbeatPing,
    entity: events.entity,
    entityId: nodeId,
    poolId,
    now,
  });
  return {
    kind: "created",
    licenseFile: grant.file,
    licenseKey: grant.key,
    expiresAt: now + policy.ttl,
    license: leaseLicense(grant),
  };
}

/**
 * The current lease of `holder` (a node's fingerprint, or a node or user) in
 * `pool`, read without changing anything: not extended, and an expired one is
 * not ended (it is reported `not_found`, as a claim or the reaper would
 * treat it).
 *
 * @throws {PoolNotFoundError} `pool` names no pool (checked after the node, as release does).
 */
export function lookup(
  store: Store,
  holder: HolderRef,
  options: Omit<LeaseOptions, "random">,
): Promise<LookupResult> {
  return store.read(async (tx): Promise<LookupResult> => {
    const { now, policy } = options;
    const node = await tx.activeNode(holderOf(holder).key);
    if (!node) return { kind: "not_found" };
    const poolId = await resolvePool(tx, options.pool);
    const held = await tx.licenseLeasedBy(node.id);
    if (!held || held.poolId !== poolId || isExpired(node, { now, policy })) {
      return { kind: "not_found" };
    }
    const grant = (await tx.licenseGrant(held.id))!;
    const legacy = legacyTtl(policy);
    return {
      kind: "found",
      licenseFile: grant.file,
      licenseKey: grant.key,
      expiresAt: node.leaseExpiresAt ??
        (legacy === null || node.lastHeartbeatAt === null ? null : node.lastHeartbeatAt + legacy),
      license: leaseLicense(grant),
    };
  });
}

function leaseLicense(license: { guid: string; fileExpiresAt: number | null }): LeaseLicense {
  return { guid: license.guid, fileExpiresAt: license.fileExpiresAt };
}

/**
 * Releases the lease of `holder` (a node's fingerprint, or a node or user)
 * in `pool` in one transaction and deactivates it (`node.deactivated`, or
 * `user.deactivated`). A lease that has already expired is recorded as
 * expired and reported `not_found`, as it would be after the reaper ran.
 *
 * @throws {PoolNotFoundError} `pool` names no pool (checked after the node,
 *   as the reference Relay does).
 */
export function release(
  store: Store,
  holderRef: HolderRef,
  options: LeaseOptions,
): Promise<ReleaseResult> {
  const holder = holderOf(holderRef);
  const events = HOLDER_EVENTS[holder.kind];
  return store.transaction(async (tx): Promise<ReleaseResult> => {
    const { now, policy } = options;
    await tx.lockHolder(holder.key);
    const node = await tx.activeNode(holder.key);
    if (!node) return { kind: "not_found" };
    const poolId = await resolvePool(tx, options.pool);
    const held = await tx.licenseLeasedBy(node.id);
    if (!held || held.poolId !== poolId) return { kind: "not_found" };
    if (isExpired(node, { now, policy })) {
      await expireLease(tx, { nodeId: node.id, held, now, holder: holder.kind });
      return { kind: "not_found" };
    }
    await tx.releaseLicense(held.id, now);
    await tx.deactivateNode(node.id, now);
    await tx.audit({
      event: EventType.licenseReleased,
      entity: EntityType.license,
      entityId: held.licenseId,
      poolId,
      now,
    });
    await tx.audit({
      event: events.deactivated,
      entity: events.entity,
      entityId: node.id,
      poolId,
      now,
    });
    return { kind: "released", licenseId: held.guid };
  });
}

/**
 * Reaps up to `limit` expired leases, oldest heartbeat first, in one
 * transaction: each license is released (`license.lease_expired`) and its
 * node deactivated (`node.culled`). Returns how many nodes were reaped; call
 * again while it returns `limit`.
 *
 * The commit is not fsynced on its own: no client waits for it, and if a
 * power loss drops it, the same leases are still expired and reaped again.
 * The next acknowledged change (a claim of a reaped license included) fsyncs
 * it with its own commit.
 *
 * Of the servers sharing one database, one reaps at a time: while another's
 * reap transaction is open, this one reaps nothing and returns 0 (claims
 * still end the expired leases they meet, on every server).
 */
export function reap(
  store: Store,
  options: { now: number; ttl: number; limit: number },
): Promise<number> {
  return store.transaction(
    async (tx) =>
      await tx.tryReaperLock()
        ? await tx.reapExpired({
          now: options.now,
          cutoff: options.now - options.ttl,
          limit: options.limit,
        })
        : 0,
    { durable: false },
  );
}

/**
 * Ends an expired lease inside the caller's transaction exactly as the reaper
 * would: releases the license (`license.lease_expired`) and deactivates the
 * holder (`node.culled`, or `user.culled` for a user). `held.id` is the row
 * leased (a seat row of a multi-seat license), `held.licenseId` the license
 * the audit row names.
 */
export async function expireLease(
  tx: Tx,
  { nodeId, held, now, holder }: {
    nodeId: number;
    held: Pick<LeasedLicense, "id" | "licenseId" | "poolId">;
    now: number;
    /** The kind of holder `nodeId` is. */
    holder: HolderKind;
  },
): Promise<void> {
  const events = HOLDER_EVENTS[holder];
  await tx.releaseLicense(held.id, now);
  await tx.audit({
    event: EventType.licenseLeaseExpired,
    entity: EntityType.license,
    entityId: held.licenseId,
    poolId: held.poolId,
    now,
  });
  await tx.deactivateNode(nodeId, now);
  await tx.audit({
    event: events.culled,
    entity: events.entity,
    entityId: nodeId,
    poolId: held.poolId,
    now,
  });
}

async function resolvePool(tx: Tx, name: string | null): Promise<number | null> {
  if (name === null) return null;
  const pool = await tx.poolByName(name);
  if (!pool) throw new PoolNotFoundError(`Pool "${name}" not found`);
  return pool.id;
}
