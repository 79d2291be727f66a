/**
 * An operator ending a lease (`relay release`), as `lmremove` does for
 * FlexNet: the license becomes free at once, safely while `relay serve`
 * runs on the same database, in one transaction with its audit rows.
 *
 * The node is deactivated too, exactly as when it releases its own lease
 * (`DELETE /v1/nodes/{fp}`): its next heartbeat is a new claim, answered
 * `201` with a license (a new `node.activated`, `license.leased`) or `410`,
 * never a `202` extension of the lease it lost. The audit log then tells the
 * same story as for any other lease, `license.operator_released` taking the
 * place of `license.released`, and every `node.activated` still has its
 * `node.deactivated` or `node.culled`.
 *
 * @module
 */

import { EntityType, EventType } from "./audit.ts";
import {
  LicenseNotFoundError,
  NodeNotFoundError,
  NotLeasedError,
  PoolNotFoundError,
  UserNotFoundError,
} from "./errors.ts";
import { HOLDER_EVENTS, holderOfKey, normalizeEmail, userHolder } from "./holders.ts";
import { expireLease } from "./leases.ts";
import { leaseState } from "./licenses.ts";
import type { LeaseDetail, Store, Tx } from "./storage/store.ts";

/**
 * The lease to end: the one a node holds, the one a user holds (by email,
 * as given: compared in lowercase), or the one on a license.
 */
export type ReleaseTarget = { node: string } | { user: string } | { license: string };

/**
 * What {@link releaseLease} did: ended a live lease (`released`), or found it
 * past its stored expiry and ended it as the reaper would (`expired`:
 * `license.lease_expired`, `node.culled`).
 */
export type OperatorReleaseResult = { kind: "released" | "expired"; lease: LeaseDetail };

/**
 * Ends the lease of `target` at `now` (unix seconds) in one transaction: the
 * license is released (`license.operator_released`, entity the license) and
 * the node deactivated (`node.deactivated`), both with the lease's pool.
 * With `pool`, the lease must be in that pool. A multi-seat license
 * (`--license`) has every seat's lease ended: one result per lease, in seat
 * order; a node or user has one.
 *
 * @throws {NodeNotFoundError} no node has the fingerprint.
 * @throws {LicenseNotFoundError} no license has the id.
 * @throws {PoolNotFoundError} `pool` names no pool.
 * @throws {NotLeasedError} the node or license holds no lease (in `pool`).
 */
export function releaseLease(
  store: Store,
  target: ReleaseTarget,
  options: { pool?: string; now: number },
): Promise<OperatorReleaseResult[]> {
  const { now } = options;
  return store.transaction(async (tx) => {
    const leases = await lockedLeases(tx, target);
    if (options.pool !== undefined) {
      const pool = await tx.poolByName(options.pool);
      if (!pool) throw new PoolNotFoundError(`Pool "${options.pool}" not found`);
      // Every seat of a license is in the license's pool.
      const lease = leases[0];
      if (lease.poolId !== pool.id) {
        const where = lease.poolName === null ? "without a pool" : `in pool "${lease.poolName}"`;
        throw new NotLeasedError(
          `${describe(target)} holds no lease in pool "${pool.name}": its lease is ${where}`,
        );
      }
    }
    const results: OperatorReleaseResult[] = [];
    for (const lease of leases) results.push(await endLease(tx, lease, now));
    return results;
  });
}

/** Ends one lease inside the caller's transaction. */
async function endLease(tx: Tx, lease: LeaseDetail, now: number): Promise<OperatorReleaseResult> {
  // Audit rows name the license: a seat row's license for a seat.
  const licenseId = lease.seatOf ?? lease.licenseId;
  const held = { id: lease.licenseId, licenseId, poolId: lease.poolId };
  const holder = holderOfKey(lease.nodeFingerprint).kind;
  if (leaseState(lease, now) === "expired") {
    await expireLease(tx, { nodeId: lease.nodeId, held, now, holder });
    return { kind: "expired", lease };
  }
  await tx.releaseLicense(lease.licenseId, now);
  await tx.audit({
    event: EventType.licenseOperatorReleased,
    entity: EntityType.license,
    entityId: licenseId,
    poolId: lease.poolId,
    now,
  });
  await tx.deactivateNode(lease.nodeId, now);
  await tx.audit({
    event: HOLDER_EVENTS[holder].deactivated,
    entity: HOLDER_EVENTS[holder].entity,
    entityId: lease.nodeId,
    poolId: lease.poolId,
    now,
  });
  return { kind: "released", lease };
}

/**
 * The leases of `target` as {@link findLeases} finds them, read again once
 * their holders are locked (`Tx.lockHolder`, in key order), so that none of
 * them changes hands before it ends: a claim or release of the same holder on
 * another server waits for this transaction.
 */
async function lockedLeases(tx: Tx, target: ReleaseTarget): Promise<LeaseDetail[]> {
  const locked = new Set<string>();
  let leases = await findLeases(tx, target);
  for (;;) {
    const keys = leases.map((lease) => lease.nodeFingerprint).filter((key) => !locked.has(key));
    if (keys.length === 0) return leases;
    for (const key of keys.sort()) {
      await tx.lockHolder(key);
      locked.add(key);
    }
    leases = await findLeases(tx, target);
  }
}

/** The leases of `target` (at least one), or the error that says why there is none. */
async function findLeases(tx: Tx, target: ReleaseTarget): Promise<LeaseDetail[]> {
  if ("node" in target) {
    const node = await tx.nodeByFingerprint(target.node);
    if (!node) throw new NodeNotFoundError(`Node "${target.node}" not found`);
    const [lease] = await tx.leaseDetails({ nodeId: node.id });
    if (!lease) throw new NotLeasedError(`Node "${target.node}" holds no lease`);
    return [lease];
  }
  if ("user" in target) {
    const email = normalizeEmail(target.user);
    const user = email === undefined
      ? undefined
      : await tx.nodeByFingerprint(userHolder(email).key);
    if (!user) throw new UserNotFoundError(`User "${target.user}" not found`);
    const [lease] = await tx.leaseDetails({ nodeId: user.id });
    if (!lease) throw new NotLeasedError(`User "${target.user}" holds no lease`);
    return [lease];
  }
  const license = await tx.licenseByGuid(target.license);
  if (!license) throw new LicenseNotFoundError(`License "${target.license}" not found`);
  // Its row's lease and its seat rows' (`Tx.leaseDetails`).
  const leases = await tx.leaseDetails({ licenseId: license.id });
  if (leases.length === 0) throw new NotLeasedError(`License "${target.license}" is not leased`);
  return leases;
}

function describe(target: ReleaseTarget): string {
  if ("node" in target) return `Node "${target.node}"`;
  return "user" in target ? `User "${target.user}"` : `License "${target.license}"`;
}
