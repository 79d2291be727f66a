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
import type {
  ActiveNode,
  AuditEntry,
  AuditLogQuery,
  AuditLogRow,
  HolderTimes,
  LeaseDetail,
  LeasedLicense,
  LeaseFilter,
  LeaseTimes,
  LicenseFileRow,
  LicenseGrant,
  LicenseInfo,
  NewLicenseRow,
  NodeRow,
  Pool,
  PoolLicenseCounts,
  RenewableLicense,
  SeatChange,
} from "./records.ts";

export type * from "./records.ts";

/** Read-only statements for the status page and `/metrics`. */
export interface StatusReads {
  /** The greatest audit row id, 0 when the log is empty. */
  lastAuditId(): Promise<number>;
  /**
   * Leases granted minus ended per bucket of `bucketSeconds` since `since`
   * (unix seconds), oldest first; buckets without change are left out.
   */
  seatChanges(range: { since: number; bucketSeconds: number }): Promise<SeatChange[]>;
}

/**
 * The statements of one open transaction. Valid only inside the body it was
 * handed to; every change made through it commits or rolls back with that
 * body.
 */
export interface Tx extends StatusReads {
  /** Records one audit row (a no-op when the store was opened without audit). */
  audit(entry: AuditEntry): Promise<void>;

  /** The pool with this name, if any. */
  poolByName(name: string): Promise<Pool | undefined>;
  /** Creates a pool and records `pool.added`. */
  insertPool(name: string, now: number): Promise<Pool>;

  /** The guid of a stored license that has this guid, key or file, if any. */
  conflictingLicense(
    license: { guid: string; key: string; file: Uint8Array },
  ): Promise<string | undefined>;
  /** Inserts a license and returns its row id. */
  insertLicense(row: NewLicenseRow, now: number): Promise<number>;
  /**
   * Inserts `count` seat rows of license `licenseId` (a multi-seat license,
   * numbered from 2): each copies its pool and dates, with filler guid, key
   * and file.
   */
  insertSeats(licenseId: number, count: number, now: number): Promise<void>;
  /** One license by its Keygen id (never a seat row). */
  licenseByGuid(guid: string): Promise<LicenseInfo | undefined>;
  /**
   * All licenses in the order they were added, or those of one pool, or
   * only those whose file or license expires at or before `expiringBy`
   * (unix seconds; expired ones included). Seat rows are not listed: a
   * multi-seat license is one entry, with its seats counted.
   */
  licenses(filter?: { poolId?: number; expiringBy?: number }): Promise<LicenseInfo[]>;
  /**
   * Every row of license `licenseId`, each with its own lease: the license's
   * row first, then its seat rows (none for a single-seat license).
   */
  licenseSeats(licenseId: number): Promise<LicenseInfo[]>;
  /** Deletes a license by row id, with its seat rows. */
  deleteLicense(id: number): Promise<void>;
  /** What a renewal of license `guid` compares against; undefined: unknown id. */
  renewableLicense(guid: string): Promise<RenewableLicense | undefined>;
  /**
   * Replaces a license's file and its dates in place, and its seat rows'
   * dates; its rows, pool and leases stay.
   */
  renewLicense(id: number, file: LicenseFileRow): Promise<void>;

  /**
   * Serialises the transactions that change one lease holder (key: its
   * `nodes.fingerprint`) until this one ends: a second caller with the same
   * key waits here, callers with other keys never do. Called first by every
   * claim, release or operator release, so that two servers sharing one
   * database never both insert or lease for the same holder. A no-op where
   * transactions already run one at a time (SQLite).
   */
  lockHolder(key: string): Promise<void>;
  /**
   * Whether this transaction is the periodic reaper's only runner: true for
   * one transaction at a time among every server sharing the database (held
   * until it ends), false for the others, which skip their turn. Always true
   * where transactions already run one at a time (SQLite).
   */
  tryReaperLock(): Promise<boolean>;

  /** The active (not deactivated) node with this fingerprint. */
  activeNode(fingerprint: string): Promise<ActiveNode | undefined>;
  /**
   * Inserts the lease holder (a node or a user, `lib/holders.ts`) with key
   * `key` and `holderType`, or reactivates it if it was deactivated, with its
   * heartbeat and lease expiry; returns its id. Undefined, changing nothing,
   * when the key is stored for a holder of another type.
   */
  activateHolder(key: string, times: HolderTimes): Promise<number | undefined>;
  /** Records a heartbeat of the node and its lease's new expiry. */
  heartbeat(nodeId: number, times: LeaseTimes): Promise<void>;
  /** Marks the node deactivated at `now`. */
  deactivateNode(nodeId: number, now: number): Promise<void>;

  /** The license row (a seat row, for a multi-seat license) the node leases, in any pool. */
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
   * counted as licenses change, in O(log n). Null: the engine keeps no such
   * count (PostgreSQL: a counter would be one row that every claim locks).
   */
  freeLicenseCount(poolId: number | null): Promise<number | null>;
  /** Whether a pool (null: no pool) has any free license, valid or not, in O(log n). */
  hasFreeLicense(poolId: number | null): Promise<boolean>;
  /**
   * The first id of `ids`, in their order, that is a free license of the pool
   * (null: no pool) valid at `validAt`; undefined if none is. One round trip
   * for the whole list (`rand`'s samples, on an engine without counts).
   */
  firstFreeLicenseAmong(
    poolId: number | null,
    pick: { ids: readonly number[]; validAt: number },
  ): Promise<number | undefined>;
  /**
   * The free license of a pool (null: no pool) valid at `validAt` with the
   * lowest id at or above `id`, wrapping around to the lowest of all; in
   * O(log n) plus one step per expired free license it passes.
   */
  freeLicenseFrom(
    poolId: number | null,
    pick: { id: number; validAt: number },
  ): Promise<number | undefined>;
  /**
   * The ids between which a pool's free licenses lie (null: no pool);
   * undefined if it never had one. The range may be wider than the free ids.
   */
  freeLicenseIdRange(poolId: number | null): Promise<{ low: number; high: number } | undefined>;
  /** Whether license `id` is a free license of the pool (null: no pool) valid at `validAt`. */
  isFreeLicense(poolId: number | null, license: { id: number; validAt: number }): Promise<boolean>;
  /**
   * The free license of a pool (null: no pool) at `index` (0 …
   * {@link freeLicenseCount} − 1) in id order, in O(log n). Only on an
   * engine that counts free licenses (others throw).
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
  /** What the holder of license `id` receives (file, key), without changing anything. */
  licenseGrant(licenseId: number): Promise<LicenseGrant | undefined>;
  /**
   * When the first live lease on a license of a pool (null: no pool) runs
   * out: the earliest stored expiry, or for a lease stored without one, its
   * last heartbeat plus `ttl` (null: such leases never run out). Undefined
   * when no lease of the pool ever runs out. Walks the leases by expiry
   * from the earliest until one of the pool: one step with one pool.
   */
  nextLeaseExpiry(poolId: number | null, ttl: number | null): Promise<number | undefined>;
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

  /** The node with this fingerprint, active or deactivated. */
  nodeByFingerprint(fingerprint: string): Promise<NodeRow | undefined>;
  /**
   * Inserts a lease holder (node or user) that holds no lease and is
   * deactivated at `now` (one known only from a denied claim, for its audit
   * rows); returns its id. The key must not be stored yet.
   */
  insertInactiveHolder(
    key: string,
    holder: { holderType: EntityType; now: number },
  ): Promise<number>;
  /**
   * Every lease held (licenses with a node, expired ones not yet reaped
   * included), in license order, or those of one pool, node or license.
   */
  leaseDetails(filter?: LeaseFilter): Promise<LeaseDetail[]>;
  /**
   * The licenses of each pool counted by lease and file state at `at.now`
   * (see {@link PoolLicenseCounts}), one row per pool that has licenses, the
   * licenses without a pool as pool null; in pool id order, no pool first.
   */
  poolLicenseCounts(at: { now: number; within: number }): Promise<PoolLicenseCounts[]>;
  /** Every pool, in the order they were created. */
  pools(): Promise<Pool[]>;
  /** How many audit rows of `event` were written at or after `since`, per pool id (null: none). */
  auditEventCounts(
    event: EventType,
    since: number,
  ): Promise<{ poolId: number | null; count: number }[]>;
  /**
   * Audit rows matching `query`, oldest first, with the names they refer to:
   * the latest `limit` of them (`take: "last"`), or the first `limit` after
   * `afterId` (`take: "first"`).
   */
  auditLogRows(query: AuditLogQuery): Promise<AuditLogRow[]>;
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
