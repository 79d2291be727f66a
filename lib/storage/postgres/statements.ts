/**
 * Every statement Relay runs on PostgreSQL, as the methods of a {@link Tx}
 * bound to one transaction's connection: lease holders, leases, the reaper
 * and audit rows here; the free-license picks in `./free_licenses.ts`; the
 * license rows and the read queries in the modules imported below.
 *
 * Several servers may share the database, so what SQLite gets from running
 * one transaction at a time is spelled out: a holder's changes take turns
 * ({@link PgTx.lockHolder}), a license is picked `FOR UPDATE SKIP LOCKED`
 * and the reaper skips holders another transaction has locked.
 *
 * Round trips are what a claim costs on PostgreSQL, so a transaction saves
 * them where the {@link Tx} contract allows: audit rows are written in one
 * statement with the COMMIT (`./audit_buffer.ts`); writes whose answer
 * nobody needs are deferred (sent with the next statement); locking a holder
 * also reads its row and lease, which the claim or release asks for next.
 *
 * @module
 */

import type { EntityType } from "../../audit.ts";
import type {
  ActiveNode,
  AuditEntry,
  HolderTimes,
  LeasedLicense,
  LeaseTimes,
  LicenseGrant,
  NodeRow,
  Pool,
  Reaped,
  Tx,
} from "../store.ts";
import { AuditBuffer } from "./audit_buffer.ts";
import type { TransactionSql } from "./connect.ts";
import * as free from "./free_licenses.ts";
import { reapExpired } from "./reap_statements.ts";
import * as audits from "./audit_queries.ts";
import * as leases from "./lease_queries.ts";
import * as licenseRows from "./license_statements.ts";
import * as status from "./status_queries.ts";

/** The first key of the two-key advisory locks of lease holders. */
export const HOLDER_LOCK_NAMESPACE = 0x52454c01;

/** The advisory lock of the periodic reaper (one 64-bit key). */
export const REAPER_LOCK = 0x52454c41_59000002n;

/** Constant text spliced into statements: they stay prepared statements. */
const FIXED = { prepare: true } as const;

/** What the holder of row `l` receives: the main row `m`'s file, key and id. */
const GRANT_COLUMNS = `m.id AS "licenseId", m.file AS file, m.key AS key, m.guid AS guid,
  m.file_expires_at AS "fileExpiresAt"`;

/** The parameters of method `K` of a {@link Tx}. */
type Args<K extends keyof Tx> = Parameters<Tx[K]>;

/** The result of method `K` of a {@link Tx}. */
type Result<K extends keyof Tx> = ReturnType<Tx[K]>;

/** The columns of {@link LeasedLicense}, of row `l` and its main row `m` (if a seat). */
const LEASED_COLUMNS = `l.id AS id, COALESCE(l.seat_of, l.id) AS "licenseId",
  COALESCE(m.guid, l.guid) AS guid, l.pool_id AS "poolId",
  l.file_expires_at AS "fileExpiresAt", l.expires_at AS "expiresAt"`;

/**
 * What {@link PgTx.lockHolder} read of the holder it locked: its row if it is
 * active, and the license that row leases. Valid until this transaction
 * changes a node or a license (others cannot: the row is locked).
 */
interface LockedHolder {
  key: string;
  node: ActiveNode | undefined;
  lease: LeasedLicense | undefined;
}

/** The statements of one PostgreSQL transaction. */
export class PgTx implements Tx {
  readonly #sql: TransactionSql;
  readonly #audit: AuditBuffer | null;
  #locked: LockedHolder | null = null;

  /**
   * Statements on `sql`, one open transaction; `audit: false` makes
   * {@link audit} a no-op. Call {@link flush} before the transaction commits.
   */
  constructor(sql: TransactionSql, options: { audit: boolean }) {
    this.#sql = sql;
    this.#audit = options.audit ? new AuditBuffer() : null;
  }

  /** Held, and written by {@link flush} (or before a statement on the audit log). */
  audit(entry: AuditEntry): Promise<void> {
    this.#audit?.add(entry);
    return Promise.resolve();
  }

  /**
   * Sends the audit rows held so far (deferred: with the next statement or
   * the COMMIT). The store calls it before committing; statements that read
   * or write the audit log call it first.
   */
  flush(): void {
    this.#audit?.flush(this.#sql);
  }

  /**
   * An advisory lock on the key's hash (a collision only makes two holders
   * take turns), then the holder's row itself, so that the reaper, which
   * skips locked rows, leaves it to this transaction. Three statements in
   * one round trip (each reads after the one before, as if awaited one by
   * one); the last two also read the holder and its lease for
   * {@link activeNode} and {@link licenseLeasedBy}.
   */
  async lockHolder(key: string): Promise<void> {
    const sql = this.#sql;
    this.#locked = null;
    sql.defer(sql`SELECT pg_advisory_xact_lock(${HOLDER_LOCK_NAMESPACE}, hashtext(${key}))`);
    const node = sql<(ActiveNode & { active: boolean })[]>`
      SELECT id, last_heartbeat_at AS "lastHeartbeatAt", lease_expires_at AS "leaseExpiresAt",
             deactivated_at IS NULL AS active
      FROM nodes WHERE fingerprint = ${key} FOR UPDATE`.then(([row]) => row);
    const lease = sql<LeasedLicense[]>`
      SELECT ${sql.unsafe(LEASED_COLUMNS, [], FIXED)}
      FROM licenses l LEFT JOIN licenses m ON m.id = l.seat_of
      WHERE l.node_id = (SELECT id FROM nodes WHERE fingerprint = ${key} AND deactivated_at IS NULL)
    `.then(([row]) => row);
    const [row, leased] = await Promise.all([node, lease]);
    const active = row?.active
      ? { id: row.id, lastHeartbeatAt: row.lastHeartbeatAt, leaseExpiresAt: row.leaseExpiresAt }
      : undefined;
    this.#locked = { key, node: active, lease: active && leased };
  }

  async tryReaperLock(): Promise<boolean> {
    const [row] = await this.#sql<{ locked: boolean }[]>`
      SELECT pg_try_advisory_xact_lock(${REAPER_LOCK.toString()}::bigint) AS locked`;
    return row.locked;
  }

  async poolByName(name: string): Promise<Pool | undefined> {
    // PostgreSQL's text cannot hold NUL (it refuses the statement), so no
    // pool is named with one: the server's name for a header it cannot read.
    if (name.includes("\0")) return undefined;
    const [row] = await this.#sql<Pool[]>`
      SELECT id, name, created_at AS "createdAt" FROM pools WHERE name = ${name}`;
    return row;
  }

  async insertPool(name: string, now: number): Promise<Pool> {
    const [row] = await this.#sql<Pool[]>`
      INSERT INTO pools (name, created_at) VALUES (${name}, ${now})
      RETURNING id, name, created_at AS "createdAt"`;
    return row;
  }

  async activeNode(fingerprint: string): Promise<ActiveNode | undefined> {
    if (this.#locked?.key === fingerprint) return this.#locked.node;
    const [row] = await this.#sql<ActiveNode[]>`
      SELECT id, last_heartbeat_at AS "lastHeartbeatAt", lease_expires_at AS "leaseExpiresAt"
      FROM nodes WHERE fingerprint = ${fingerprint} AND deactivated_at IS NULL`;
    return row;
  }

  /** The upsert changes nothing for a key stored with another holder type. */
  async activateHolder(
    key: string,
    { now, expiresAt, holderType }: HolderTimes,
  ): Promise<number | undefined> {
    this.#locked = null;
    const [row] = await this.#sql<{ id: number }[]>`
      INSERT INTO nodes (fingerprint, last_heartbeat_at, lease_expires_at, created_at, holder_type)
      VALUES (${key}, ${now}, ${expiresAt}, ${now}, ${holderType})
      ON CONFLICT (fingerprint) DO UPDATE
        SET deactivated_at = NULL, last_heartbeat_at = excluded.last_heartbeat_at,
          lease_expires_at = excluded.lease_expires_at
        WHERE nodes.holder_type = excluded.holder_type
      RETURNING id`;
    return row?.id;
  }

  /** Deferred: sent with the next statement. */
  heartbeat(nodeId: number, { now, expiresAt }: LeaseTimes): Promise<void> {
    this.#locked = null;
    this.#sql.defer(this.#sql`
      UPDATE nodes SET last_heartbeat_at = ${now}, lease_expires_at = ${expiresAt}
      WHERE id = ${nodeId}`);
    return Promise.resolve();
  }

  /** Deferred: sent with the next statement. */
  deactivateNode(nodeId: number, now: number): Promise<void> {
    this.#locked = null;
    this.#sql.defer(this.#sql`UPDATE nodes SET deactivated_at = ${now} WHERE id = ${nodeId}`);
    return Promise.resolve();
  }

  async licenseLeasedBy(nodeId: number): Promise<LeasedLicense | undefined> {
    if (this.#locked?.node?.id === nodeId) return this.#locked.lease;
    const sql = this.#sql;
    const [row] = await sql<LeasedLicense[]>`
      SELECT ${sql.unsafe(LEASED_COLUMNS, [], FIXED)}
      FROM licenses l LEFT JOIN licenses m ON m.id = l.seat_of
      WHERE l.node_id = ${nodeId}`;
    return row;
  }

  firstFreeLicense(...args: Args<"firstFreeLicense">): Result<"firstFreeLicense"> {
    return free.firstFreeLicense(this.#sql, ...args);
  }
  hasValidFreeLicense(...args: Args<"hasValidFreeLicense">): Result<"hasValidFreeLicense"> {
    return free.hasValidFreeLicense(this.#sql, ...args);
  }
  validFreeLicenseCount(...args: Args<"validFreeLicenseCount">): Result<"validFreeLicenseCount"> {
    return free.validFreeLicenseCount(this.#sql, ...args);
  }
  validFreeLicenseAt(...args: Args<"validFreeLicenseAt">): Result<"validFreeLicenseAt"> {
    return free.validFreeLicenseAt(this.#sql, ...args);
  }
  /** Null: PostgreSQL keeps no counts of free licenses (`./schema.ts`). */
  freeLicenseCount(): Promise<number | null> {
    return Promise.resolve(null);
  }
  hasFreeLicense(...args: Args<"hasFreeLicense">): Result<"hasFreeLicense"> {
    return free.hasFreeLicense(this.#sql, ...args);
  }
  firstFreeLicenseAmong(...args: Args<"firstFreeLicenseAmong">): Result<"firstFreeLicenseAmong"> {
    return free.firstFreeLicenseAmong(this.#sql, ...args);
  }
  freeLicenseFrom(...args: Args<"freeLicenseFrom">): Result<"freeLicenseFrom"> {
    return free.freeLicenseFrom(this.#sql, ...args);
  }
  freeLicenseIdRange(...args: Args<"freeLicenseIdRange">): Result<"freeLicenseIdRange"> {
    return free.freeLicenseIdRange(this.#sql, ...args);
  }
  isFreeLicense(...args: Args<"isFreeLicense">): Result<"isFreeLicense"> {
    return free.isFreeLicense(this.#sql, ...args);
  }
  freeLicenseAt(): Promise<number | undefined> {
    return free.freeLicenseAt();
  }

  /**
   * Only while the license is free: undefined if another transaction leased
   * it first. One statement: the grant is read from the main row, which the
   * update does not change.
   */
  async leaseLicense(
    licenseId: number,
    { nodeId, now }: { nodeId: number; now: number },
  ): Promise<LicenseGrant | undefined> {
    this.#locked = null;
    const sql = this.#sql;
    const [grant] = await sql<LicenseGrant[]>`
      WITH l AS (
        UPDATE licenses SET node_id = ${nodeId}, last_claimed_at = ${now}, claims = claims + 1
        WHERE id = ${licenseId} AND node_id IS NULL
        RETURNING id, seat_of
      )
      SELECT ${sql.unsafe(GRANT_COLUMNS, [], FIXED)}
      FROM l JOIN licenses m ON m.id = COALESCE(l.seat_of, l.id)`;
    return grant;
  }

  /** Deferred: sent with the next statement. */
  releaseLicense(licenseId: number, now: number): Promise<void> {
    this.#locked = null;
    this.#sql.defer(this.#sql`
      UPDATE licenses SET node_id = NULL, last_released_at = ${now} WHERE id = ${licenseId}`);
    return Promise.resolve();
  }

  async licenseGrant(licenseId: number): Promise<LicenseGrant | undefined> {
    const [row] = await this.#sql<LicenseGrant[]>`
      SELECT ${this.#sql.unsafe(GRANT_COLUMNS, [], FIXED)}
      FROM licenses l JOIN licenses m ON m.id = COALESCE(l.seat_of, l.id)
      WHERE l.id = ${licenseId}`;
    return row;
  }

  /** Walks idx_nodes_active_expiry from the earliest expiry until a lease of the pool. */
  async nextLeaseExpiry(poolId: number | null, ttl: number | null): Promise<number | undefined> {
    const sql = this.#sql;
    const pool = poolId === null ? sql`l.pool_id IS NULL` : sql`l.pool_id = ${poolId}`;
    const [stored] = await sql<{ at: number }[]>`
      SELECT n.lease_expires_at AS at FROM nodes n JOIN licenses l ON l.node_id = n.id
      WHERE n.deactivated_at IS NULL AND n.lease_expires_at IS NOT NULL AND ${pool}
      ORDER BY n.lease_expires_at LIMIT 1`;
    const [legacy] = ttl === null ? [] : await sql<{ at: number }[]>`
      SELECT n.last_heartbeat_at + ${ttl}::bigint AS at
      FROM nodes n JOIN licenses l ON l.node_id = n.id
      WHERE n.deactivated_at IS NULL AND n.lease_expires_at IS NULL
        AND n.last_heartbeat_at IS NOT NULL AND ${pool}
      ORDER BY n.last_heartbeat_at LIMIT 1`;
    if (stored === undefined) return legacy?.at;
    return legacy === undefined ? stored.at : Math.min(stored.at, legacy.at);
  }

  /** See `./reap_statements.ts`. */
  reapExpired(batch: { now: number; cutoff: number | null; limit: number }): Promise<Reaped> {
    this.#locked = null;
    return reapExpired(this.#sql, this.#audit, batch);
  }

  async recordProbe(now: number): Promise<void> {
    await this.#sql`
      INSERT INTO relay_health (id, probes, probed_at) VALUES (1, 1, ${now})
      ON CONFLICT (id) DO UPDATE
        SET probes = relay_health.probes + 1, probed_at = excluded.probed_at`;
  }

  async nodeByFingerprint(fingerprint: string): Promise<NodeRow | undefined> {
    const [row] = await this.#sql<NodeRow[]>`
      SELECT id, fingerprint, last_heartbeat_at AS "lastHeartbeatAt",
             lease_expires_at AS "leaseExpiresAt", created_at AS "createdAt",
             deactivated_at AS "deactivatedAt"
      FROM nodes WHERE fingerprint = ${fingerprint}`;
    return row;
  }

  async insertInactiveHolder(
    key: string,
    { holderType, now }: { holderType: EntityType; now: number },
  ): Promise<number> {
    this.#locked = null;
    const [row] = await this.#sql<{ id: number }[]>`
      INSERT INTO nodes (fingerprint, created_at, deactivated_at, holder_type)
      VALUES (${key}, ${now}, ${now}, ${holderType}) RETURNING id`;
    return row.id;
  }

  // Read queries and license rows: functions of the connection, one module each.
  leaseDetails(...args: Args<"leaseDetails">): Result<"leaseDetails"> {
    return leases.leaseDetails(this.#sql, ...args);
  }
  poolLicenseCounts(...args: Args<"poolLicenseCounts">): Result<"poolLicenseCounts"> {
    return leases.poolLicenseCounts(this.#sql, ...args);
  }
  pools(...args: Args<"pools">): Result<"pools"> {
    return leases.pools(this.#sql, ...args);
  }
  auditLogRows(...args: Args<"auditLogRows">): Result<"auditLogRows"> {
    this.flush();
    return audits.auditLogRows(this.#sql, ...args);
  }
  auditEventCounts(...args: Args<"auditEventCounts">): Result<"auditEventCounts"> {
    this.flush();
    return audits.auditEventCounts(this.#sql, ...args);
  }
  deleteAuditBefore(...args: Args<"deleteAuditBefore">): Result<"deleteAuditBefore"> {
    this.flush();
    return audits.deleteAuditBefore(this.#sql, ...args);
  }
  lastAuditId(...args: Args<"lastAuditId">): Result<"lastAuditId"> {
    this.flush();
    return status.lastAuditId(this.#sql, ...args);
  }
  seatChanges(...args: Args<"seatChanges">): Result<"seatChanges"> {
    this.flush();
    return status.seatChanges(this.#sql, ...args);
  }
  conflictingLicense(...args: Args<"conflictingLicense">): Result<"conflictingLicense"> {
    return licenseRows.conflictingLicense(this.#sql, ...args);
  }
  insertLicense(...args: Args<"insertLicense">): Result<"insertLicense"> {
    this.#locked = null;
    return licenseRows.insertLicense(this.#sql, ...args);
  }
  insertSeats(...args: Args<"insertSeats">): Result<"insertSeats"> {
    this.#locked = null;
    return licenseRows.insertSeats(this.#sql, ...args);
  }
  licenseByGuid(...args: Args<"licenseByGuid">): Result<"licenseByGuid"> {
    return licenseRows.licenseByGuid(this.#sql, ...args);
  }
  licenses(...args: Args<"licenses">): Result<"licenses"> {
    return licenseRows.licenses(this.#sql, ...args);
  }
  licenseSeats(...args: Args<"licenseSeats">): Result<"licenseSeats"> {
    return licenseRows.licenseSeats(this.#sql, ...args);
  }
  deleteLicense(...args: Args<"deleteLicense">): Result<"deleteLicense"> {
    this.#locked = null;
    return licenseRows.deleteLicense(this.#sql, ...args);
  }
  renewableLicense(...args: Args<"renewableLicense">): Result<"renewableLicense"> {
    return licenseRows.renewableLicense(this.#sql, ...args);
  }
  renewLicense(...args: Args<"renewLicense">): Result<"renewLicense"> {
    this.#locked = null;
    return licenseRows.renewLicense(this.#sql, ...args);
  }
}
