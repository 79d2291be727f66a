/**
 * The rows and records that cross the storage interface (`./store.ts`): what
 * a {@link Tx} method takes and returns, whatever the engine.
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
  /** How many holders it serves at once: 1, or N for `relay add --seats N`. */
  seats: number;
  /** How many of its seats are leased (expired leases not yet reaped included). */
  seatsUsed: number;
}

/** A license as a renewal sees it. */
export interface RenewableLicense {
  id: number;
  key: string;
  poolId: number | null;
  /** `meta.issued` of the stored file; null when not recorded (added by Keygen Relay). */
  fileIssuedAt: number | null;
}

/** A license file and the dates and limits read from it. */
export type LicenseFileRow = Pick<
  NewLicenseRow,
  "file" | "fileIssuedAt" | "fileExpiresAt" | "expiresAt" | "maxMachines" | "maxUsers"
>;

/** The columns of a license to insert. */
export interface NewLicenseRow {
  guid: string;
  file: Uint8Array;
  key: string;
  poolId: number | null;
  fileIssuedAt: number | null;
  fileExpiresAt: number | null;
  expiresAt: number | null;
  /** `data.attributes.maxMachines` of the file; null: not stated. */
  maxMachines?: number | null;
  /** `data.attributes.maxUsers` of the file; null: not stated. */
  maxUsers?: number | null;
}

/**
 * A node that has not been deactivated. "Node" in this interface stands for
 * any lease holder, a row of `nodes`: a node, or a user (`lib/holders.ts`),
 * whose key in `fingerprint` is the email behind `USER_KEY_PREFIX`.
 */
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

/** {@link LeaseTimes} of a lease holder of a type (`nodes.holder_type`, an entity type id). */
export interface HolderTimes extends LeaseTimes {
  /** `EntityType.node` or `EntityType.user`. */
  holderType: EntityType;
}

/** A license as the lease logic sees it. */
export interface LeasedLicense {
  /** The row leased: the license's, or one of its seat rows. */
  id: number;
  /** The license's row id (the main row of a multi-seat license): audit rows name it. */
  licenseId: number;
  /** The license's id at Keygen. */
  guid: string;
  poolId: number | null;
  /** Unix seconds when its file expires (`meta.expiry`); null: never. */
  fileExpiresAt: number | null;
  /** Unix seconds when the license itself expires; null: never. */
  expiresAt: number | null;
}

/** What a node receives with a new lease (for a seat row: its license's file, key and id). */
export interface LicenseGrant {
  /** The license's row id (the main row of a multi-seat license): audit rows name it. */
  licenseId: number;
  /** The license file exactly as added. */
  file: Uint8Array;
  /** The license key. */
  key: string;
  /** The license's id at Keygen. */
  guid: string;
  /** Unix seconds when its file expires (`meta.expiry`); null: never, or not recorded. */
  fileExpiresAt: number | null;
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

/** The change in leased seats during one time bucket, from the audit log. */
export interface SeatChange {
  /** Unix second at which the bucket starts (a multiple of its width). */
  at: number;
  /** Leases granted minus leases ended (released, expired, by an operator). */
  delta: number;
}

/** What a backup wrote (`backupDatabase` in `./open.ts`). */
export interface BackupResult {
  /** Size of the copy, in bytes. */
  bytes: number;
  /** How many licenses the copy holds. */
  licenses: number;
  /** The copy's Relay schema version (0: none recorded). */
  schemaVersion: number;
}

/** A file that holds the database: for SQLite the file itself and its `-wal` and `-shm`. */
export interface DatabaseFile {
  path: string;
  role: "database" | "wal" | "shm";
  /** Permission bits (`0o600`); null where the system has none. */
  mode: number | null;
  /** The owner's user id; null where the system has none. */
  uid: number | null;
}

/** Where a database's schema stands against this Relay's. */
export type SchemaStatus =
  /** At this Relay's latest version. */
  | { kind: "current"; version: number }
  /** An older Relay's schema (0: no tables yet): the next `serve` or `add` migrates it. */
  | { kind: "behind"; version: number; latest: number }
  /** Keygen Relay's schema, not yet migrated. */
  | { kind: "reference"; latest: number }
  /** Written by a newer Relay (or Keygen Relay): this one refuses to open it. */
  | { kind: "newer"; problem: string }
  /** Not Relay's, or left half-migrated: refused. */
  | { kind: "unusable"; problem: string };

/** A license that has expired or expires soon, with its two expiries. */
export interface ExpiringLicense {
  guid: string;
  /** Unix seconds; null: never. */
  fileExpiresAt: number | null;
  /** Unix seconds; null: never. */
  expiresAt: number | null;
}

/** A lease past its stored expiry that no reaper has ended yet. */
export interface OverdueLease {
  /** The node's fingerprint. */
  fingerprint: string;
  /** The leased license's Keygen id. */
  license: string;
  /** Unix seconds. */
  leaseExpiresAt: number;
}

/** What `relay doctor` reads of the rows (a database at the current schema). */
export interface DatabaseContents {
  /** How many licenses are stored. */
  licenses: number;
  /** Licenses that stop being valid at or before the `expiringBy` asked for, soonest first. */
  expiring: ExpiringLicense[];
  /** Leases still held whose stored expiry is at or before `now`, oldest first. */
  overdueLeases: OverdueLease[];
  /** Unix seconds of the newest audit record; null: none. */
  newestAudit: number | null;
  /** Unix seconds of the newest heartbeat of any node; null: none. */
  newestHeartbeat: number | null;
}

/**
 * What a database is like, read without changing it (`inspectDatabase` in
 * `./open.ts`); `lib/doctor.ts` judges it.
 */
export interface Inspection {
  /** The files that hold it, as they were before it was opened. */
  files: DatabaseFile[];
  /** Why it could not be read at all (not a database, a page unreadable); null if it could. */
  unreadable: string | null;
  /** The engine's integrity check: `["ok"]`, or its first findings. */
  integrity: string[];
  /** Rows that point to a row that does not exist (table, its row id, the table it points to). */
  foreignKeyViolations: { table: string; rowid: number | null; parent: string }[];
  /** Why the foreign key check failed to run (a damaged page); null if it ran. */
  foreignKeyError: string | null;
  /** Null when it could not be read. */
  schema: SchemaStatus | null;
  /** Null unless the schema is current and the rows could be read (see `contentsError`). */
  contents: DatabaseContents | null;
  /** Why reading the rows failed; null if they were read or not asked for. */
  contentsError: string | null;
  /** Why a write would be refused now (read-only, locked); null: it would be accepted. */
  writeRefusal: string | null;
}

/** A row of `nodes`. */
export interface NodeRow {
  id: number;
  fingerprint: string;
  /** Unix seconds; null for a node that never got a lease. */
  lastHeartbeatAt: number | null;
  /** See {@link ActiveNode.leaseExpiresAt}. */
  leaseExpiresAt: number | null;
  createdAt: number;
  /** Unix seconds when it released its lease or was culled; null: active. */
  deactivatedAt: number | null;
}

/** Which leases {@link Tx.leaseDetails} returns: all of them, or those matching every field. */
export interface LeaseFilter {
  poolId?: number;
  nodeId?: number;
  /** A license's row id: the leases of its row and of its seat rows (a multi-seat license). */
  licenseId?: number;
  /** Soonest stored expiry first (leases that never expire last); default: in license order. */
  soonestFirst?: boolean;
  /** At most this many. */
  limit?: number;
}

/** A license leased to a node, as an operator sees it: no file, no key. */
export interface LeaseDetail {
  /** The row leased: the license's, or one of its seat rows. */
  licenseId: number;
  /** The license's Keygen id (a seat row's license's). */
  licenseGuid: string;
  /** The license's row id when the row leased is a seat row; null otherwise. */
  seatOf: number | null;
  /** How many seats the license has: 1, or N for `relay add --seats N`. */
  seats: number;
  poolId: number | null;
  poolName: string | null;
  nodeId: number;
  nodeFingerprint: string;
  /** Unix seconds of the claim that leased it (`licenses.last_claimed_at`). */
  claimedAt: number | null;
  /** Unix seconds of the node's last heartbeat. */
  lastHeartbeatAt: number | null;
  /** The lease's stored expiry (see {@link ActiveNode.leaseExpiresAt}). */
  leaseExpiresAt: number | null;
  /** When the license's file or the license itself expires (see `lib/expiry.ts`). */
  fileExpiresAt: number | null;
  expiresAt: number | null;
}

/** The licenses of one pool, counted at a moment `now`. */
export interface PoolLicenseCounts {
  /** Null: the licenses added without a pool. */
  poolId: number | null;
  poolName: string | null;
  licenses: number;
  /** Leased, and the lease has no stored expiry or one after `now`. */
  leased: number;
  /** Leased, but the stored expiry has passed: not reaped yet. */
  expiredLeases: number;
  free: number;
  /** Valid at `now`, but not beyond `now + within` (`lib/expiry.ts`). */
  expiring: number;
  /** No longer valid at `now`. */
  expired: number;
  /** No longer valid at `now`, and not leased (or the lease has passed its expiry). */
  expiredUnleased: number;
}

/** Which audit rows {@link Tx.auditLogRows} returns: those matching every field given. */
export interface AuditLogQuery {
  /** Only these event types. */
  events?: readonly EventType[];
  /** Every event type but these. */
  excludeEvents?: readonly EventType[];
  /**
   * Only rows about these entities (any of them): a license's or a node's
   * own events, or a pool's `pool.added`.
   */
  entities?: readonly { entity: EntityType; id: number }[];
  /** Only rows of this pool (its `pool.added` included). */
  poolId?: number;
  /** Unix seconds, included. */
  since?: number;
  /** Unix seconds, included. */
  until?: number;
  /** Only rows with a greater id. */
  afterId?: number;
  /** The latest `limit` rows (`last`) or the first ones (`first`). */
  take: "first" | "last";
  /** At most this many rows; null: all. */
  limit: number | null;
}

/** One audit row with the names of what it refers to, where they still exist. */
export interface AuditLogRow {
  id: number;
  event: EventType;
  entity: EntityType;
  entityId: number;
  poolId: number | null;
  /** The pool's name: of `pool_id`, or of the entity of `pool.added`. */
  poolName: string | null;
  /** Unix seconds. */
  createdAt: number;
  /** The license's Keygen id, for license events of a license still stored. */
  licenseGuid: string | null;
  /** The node's fingerprint, for node events. */
  nodeFingerprint: string | null;
}
