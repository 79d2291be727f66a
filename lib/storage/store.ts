/**
 * The storage interface: what the lease and license logic needs of a
 * database, whatever the engine. An engine (today SQLite, in
 * `lib/storage/sqlite/`) implements {@link Store}; the logic in `lib/` only
 * sees a {@link Tx}, handed to the body of {@link Store.transaction}, so a
 * statement cannot run outside a transaction: there is no other way to reach
 * one.
 *
 * Every method is asynchronous, so that an engine that talks to a server
 * (PostgreSQL) fits the same logic. Times are unix seconds throughout; callers
 * pass `now`, a store never reads the clock.
 *
 * @module
 */

import type { EntityType, EventType } from "../audit.ts";

/** A row of `pools`. */
export interface Pool {
  id: number;
  name: string;
  createdAt: number;
}

/** A license as `ls` and `stat` show it: no file bytes, no key. */
export interface LicenseInfo {
  id: number;
  guid: string;
  poolId: number | null;
  poolName: string | null;
  claims: number;
  nodeId: number | null;
  nodeFingerprint: string | null;
  nodeLastHeartbeatAt: number | null;
  /** The lease's stored expiry (see {@link ActiveNode.leaseExpiresAt}). */
  leaseExpiresAt: number | null;
  lastClaimedAt: number | null;
  lastReleasedAt: number | null;
  createdAt: number;
  fileIssuedAt: number | null;
  fileExpiresAt: number | null;
  expiresAt: number | null;
}

/** The columns of a license to insert. */
export interface NewLicenseRow {
  guid: string;
  file: Uint8Array;
  key: string;
  poolId: number | null;
  fileIssuedAt: number | null;
  fileExpiresAt: number | null;
  expiresAt: number | null;
}

/** A node that has not been deactivated. */
export interface ActiveNode {
  id: number;
  /** Unix seconds; null for a node that never got a lease (reference Relay). */
  lastHeartbeatAt: number | null;
  /**
   * When its lease expires, in unix seconds, as stored when it was granted or
   * extended; null for a lease that never expires, or one stored without it
   * (before Relay 0.2, or by Keygen Relay: see {@link LeasePolicy}).
   */
  leaseExpiresAt: number | null;
}

/** A lease's times as a claim or heartbeat stores them. */
export interface LeaseTimes {
  /** Unix seconds of the heartbeat. */
  now: number;
  /** Unix seconds when the lease expires; null: never (no heartbeats). */
  expiresAt: number | null;
}

/** A license as the lease logic sees it. */
export interface LeasedLicense {
  id: number;
  /** The Keygen id, for logs. */
  guid: string;
  poolId: number | null;
  /** Unix seconds when its file expires (`meta.expiry`); null: never. */
  fileExpiresAt: number | null;
  /** Unix seconds when the license itself expires; null: never. */
  expiresAt: number | null;
}

/** What a node receives with a new lease. */
export interface LicenseGrant {
  /** The Keygen id, for logs. */
  guid: string;
  /** The license file exactly as added. */
  file: Uint8Array;
  /** The license key. */
  key: string;
}

/** One audit record: what happened (`event`) to which row (`entity`, `entityId`). */
export interface AuditEntry {
  event: EventType;
  entity: EntityType;
  entityId: number;
  /** The pool concerned, if any. */
  poolId: number | null;
  /** Unix seconds. */
  now: number;
}

/**
 * The statements of one open transaction. Valid only inside the body it was
 * handed to; every change made through it commits or rolls back with that
 * body.
 */
export interface Tx {
  /** Records one audit row (a no-op when the store was opened without audit). */
  audit(entry: AuditEntry): Promise<void>;

  /** The pool with this name, if any. */
  poolByName(name: string): Promise<Pool | undefined>;
  /** Creates a pool and records `pool.added`. */
  insertPool(name: string, now: number): Promise<Pool>;
  /** Every pool, by name. */
  pools(): Promise<Pool[]>;

  /** The guid of a stored license that has this guid, key or file, if any. */
  conflictingLicense(
    license: { guid: string; key: string; file: Uint8Array },
  ): Promise<string | undefined>;
  /** Inserts a license and returns its row id. */
  insertLicense(row: NewLicenseRow, now: number): Promise<number>;
  /** One license by its Keygen id. */
  licenseByGuid(guid: string): Promise<LicenseInfo | undefined>;
  /**
   * All licenses in the order they were added, or those of one pool, or
   * only those whose file or license expires at or before `expiringBy`
   * (unix seconds; expired ones included).
   */
  licenses(filter?: { poolId?: number; expiringBy?: number }): Promise<LicenseInfo[]>;
  /** Deletes a license by row id. */
  deleteLicense(id: number): Promise<void>;

  /** The active (not deactivated) node with this fingerprint. */
  activeNode(fingerprint: string): Promise<ActiveNode | undefined>;
  /**
   * Inserts the node, or reactivates it if it was deactivated, with its
   * heartbeat and lease expiry; returns its id.
   */
  activateNode(fingerprint: string, times: LeaseTimes): Promise<number>;
  /** Records a heartbeat of the node and its lease's new expiry. */
  heartbeat(nodeId: number, times: LeaseTimes): Promise<void>;
  /** Marks the node deactivated at `now`. */
  deactivateNode(nodeId: number, now: number): Promise<void>;

  /** The license the node leases, in any pool. */
  licenseLeasedBy(nodeId: number): Promise<LeasedLicense | undefined>;
  /**
   * The free license of a pool (null: no pool), added first or last, among
   * those valid at `validAt`: neither its file nor the license expired (see
   * `validUntil` in `lib/expiry.ts`). Costs one indexed lookup plus one per
   * expired free license it passes in that order.
   */
  firstFreeLicense(
    poolId: number | null,
    pick: { order: "first" | "last"; validAt: number },
  ): Promise<number | undefined>;
  /** Whether a pool (null: no pool) has a free license valid at `validAt`, in O(log n). */
  hasValidFreeLicense(poolId: number | null, validAt: number): Promise<boolean>;
  /** How many free licenses of a pool (null: no pool) are valid at `validAt`, in O(that many). */
  validFreeLicenseCount(poolId: number | null, validAt: number): Promise<number>;
  /**
   * The free license of a pool (null: no pool) valid at `validAt` at `index`
   * (0 … {@link validFreeLicenseCount} − 1) in one fixed order, in O(index).
   */
  validFreeLicenseAt(
    poolId: number | null,
    pick: { index: number; validAt: number },
  ): Promise<number | undefined>;
  /**
   * How many licenses of a pool are free (null: no pool), valid or not:
   * counted as licenses change, in O(log n).
   */
  freeLicenseCount(poolId: number | null): Promise<number>;
  /**
   * The ids between which a pool's free licenses lie (null: no pool);
   * undefined if it never had one. The range may be wider than the free ids.
   */
  freeLicenseIdRange(poolId: number | null): Promise<{ low: number; high: number } | undefined>;
  /** Whether license `id` is a free license of the pool (null: no pool) valid at `validAt`. */
  isFreeLicense(poolId: number | null, license: { id: number; validAt: number }): Promise<boolean>;
  /**
   * The free license of a pool (null: no pool) at `index` (0 …
   * {@link freeLicenseCount} − 1) in id order, in O(log n).
   */
  freeLicenseAt(poolId: number | null, index: number): Promise<number | undefined>;
  /**
   * Leases a free license to a node at `now` and returns what the node
   * receives; undefined if the license is not free.
   */
  leaseLicense(
    licenseId: number,
    lease: { nodeId: number; now: number },
  ): Promise<LicenseGrant | undefined>;
  /** Ends the lease on a license at `now`. */
  releaseLicense(licenseId: number, now: number): Promise<void>;
  /**
   * Reaps up to `limit` active nodes whose lease has expired: a stored expiry
   * at or before `now`, or, without one, a last heartbeat at or before
   * `cutoff` (null: those never expire). Releases the license each leases
   * (`license.lease_expired`) and deactivates it (`node.culled`), at `now`.
   * Returns how many nodes were reaped.
   */
  reapExpired(batch: { now: number; cutoff: number | null; limit: number }): Promise<number>;

  /** Deletes up to `limit` audit records created before `cutoff`; returns how many. */
  deleteAuditBefore(cutoff: number, limit: number): Promise<number>;

  /**
   * Rewrites the database's one probe row (a change every time), so that
   * committing it proves the database accepts writes. Records no audit.
   */
  recordProbe(now: number): Promise<void>;
}

/** Options of {@link Store.transaction}. */
export interface TransactionOptions {
  /**
   * `false` commits without waiting for the disk, for changes that no client
   * is told about and that are safe to redo (the reaper's). A later durable
   * commit makes them durable too; a crash of the process loses nothing.
   */
  durable?: boolean;
}

/** An open Relay database, whatever the engine. */
export interface Store {
  /** Whether audit rows are written. */
  readonly auditEnabled: boolean;
  /**
   * Runs `fn` as one atomic transaction that may write: it commits when `fn`
   * resolves and rolls back when it rejects. `fn` must do nothing but
   * database work through `tx` (no timers, no I/O): an engine may hold a lock
   * for it. Never call `transaction` or `read` from inside `fn`.
   *
   * @throws {DatabaseError} the database failed (full disk, locked too long, …).
   */
  transaction<T>(fn: (tx: Tx) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** Runs `fn` on a consistent snapshot; `fn` must not write. */
  read<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /**
   * Why the last transaction that may write failed in the database (read
   * only, locked too long, disk full, I/O error: the engine's words, without
   * the path); null once one commits, and before any ran. A failure of the
   * caller's own (an error its body threw, a constraint it broke) does not
   * count: the database accepted the transaction.
   */
  writeFailure(): string | null;
  /** Finishes pending work and closes the database. */
  close(): Promise<void>;
}
