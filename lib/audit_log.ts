/**
 * Reading the audit log (`relay audit`): event names, filters by name
 * (license id, node fingerprint, pool name) resolved to the ids the log
 * stores, and rows with the names of what they refer to.
 *
 * The functions take the transaction handle, so that another reader (a
 * status page) can use them inside its own snapshot.
 *
 * @module
 */

import { databaseEngine } from "./storage/open.ts";
import { EntityType, EventType } from "./audit.ts";
import {
  LicenseNotFoundError,
  NodeNotFoundError,
  PoolNotFoundError,
  UserNotFoundError,
} from "./errors.ts";
import { normalizeEmail, userHolder } from "./holders.ts";
import type { AuditLogQuery, AuditLogRow, Tx } from "./storage/store.ts";

/**
 * The name of each event type, as the `event_types` table stores it (the
 * reference's names, then Relay's own).
 */
export const EVENT_NAMES: Readonly<Record<EventType, string>> = {
  [EventType.unknown]: "unknown",
  [EventType.licenseAdded]: "license.added",
  [EventType.licenseRemoved]: "license.removed",
  [EventType.licenseLeased]: "license.leased",
  [EventType.licenseLeaseExtended]: "license.lease_extended",
  [EventType.licenseReleased]: "license.released",
  [EventType.licenseLeaseExpired]: "license.lease_expired",
  [EventType.nodeActivated]: "node.activated",
  [EventType.nodeHeartbeatPing]: "node.heartbeat_ping",
  [EventType.nodeDeactivated]: "node.deactivated",
  [EventType.nodeCulled]: "node.culled",
  [EventType.poolAdded]: "pool.added",
  [EventType.licenseDenied]: "license.denied",
  [EventType.licenseOperatorReleased]: "license.operator_released",
  [EventType.licenseRenewed]: "license.renewed",
  [EventType.userActivated]: "user.activated",
  [EventType.userHeartbeatPing]: "user.heartbeat_ping",
  [EventType.userDeactivated]: "user.deactivated",
  [EventType.userCulled]: "user.culled",
};

/** The name of each entity type, as the `entity_types` table stores it. */
export const ENTITY_NAMES: Readonly<Record<EntityType, string>> = {
  [EntityType.unknown]: "unknown",
  [EntityType.license]: "license",
  [EntityType.node]: "node",
  [EntityType.pool]: "pool",
  [EntityType.user]: "user",
};

/** The event type named `name` (`license.leased`), if any. */
export function eventByName(name: string): EventType | undefined {
  const found = Object.entries(EVENT_NAMES).find(([, known]) => known === name);
  return found === undefined ? undefined : Number(found[0]) as EventType;
}

/** Which audit rows to read, by the names an operator knows. */
export interface AuditFilter {
  /** Only these event types. */
  events?: readonly EventType[];
  /** Only this license's events (by Keygen id). */
  license?: string;
  /**
   * Only this node's events (by fingerprint). With `license` as well: the
   * events of either.
   */
  node?: string;
  /** Only this user's events (by email, any case). With `license` or `node`: of any of them. */
  user?: string;
  /** Only this pool's events, its `pool.added` included. */
  pool?: string;
  /** Unix seconds, included. */
  since?: number;
  /** Unix seconds, included. */
  until?: number;
}

/** The part of an {@link AuditLogQuery} that a filter decides. */
export type AuditSelection = Omit<AuditLogQuery, "take" | "limit" | "afterId">;

/** An audit row with the names of its event and entity type. */
export interface AuditRecord extends AuditLogRow {
  eventName: string;
  entityName: string;
}

/**
 * The ids the log stores for the names of `filter`.
 *
 * @throws {LicenseNotFoundError} no license has the id.
 * @throws {NodeNotFoundError} no node has the fingerprint.
 * @throws {UserNotFoundError} no user has the email.
 * @throws {PoolNotFoundError} no pool has the name.
 */
export async function resolveAuditFilter(tx: Tx, filter: AuditFilter): Promise<AuditSelection> {
  const entities: { entity: EntityType; id: number }[] = [];
  if (filter.license !== undefined) {
    const license = await tx.licenseByGuid(filter.license);
    if (!license) throw new LicenseNotFoundError(`License "${filter.license}" not found`);
    entities.push({ entity: EntityType.license, id: license.id });
  }
  if (filter.node !== undefined) {
    const node = await tx.nodeByFingerprint(filter.node);
    if (!node) throw new NodeNotFoundError(`Node "${filter.node}" not found`);
    entities.push({ entity: EntityType.node, id: node.id });
  }
  if (filter.user !== undefined) {
    const email = normalizeEmail(filter.user);
    const user = email === undefined
      ? undefined
      : await tx.nodeByFingerprint(userHolder(email).key);
    if (!user) throw new UserNotFoundError(`User "${filter.user}" not found`);
    entities.push({ entity: EntityType.user, id: user.id });
  }
  let poolId: number | undefined;
  if (filter.pool !== undefined) {
    const pool = await tx.poolByName(filter.pool);
    if (!pool) throw new PoolNotFoundError(`Pool "${filter.pool}" not found`);
    poolId = pool.id;
  }
  return {
    events: filter.events,
    entities: entities.length === 0 ? undefined : entities,
    poolId,
    since: filter.since,
    until: filter.until,
  };
}

/**
 * The audit rows of `query`, oldest first, named: the latest `limit`
 * (`take: "last"`) or the first `limit` after `afterId` (`take: "first"`).
 */
export async function listAudit(tx: Tx, query: AuditLogQuery): Promise<AuditRecord[]> {
  const rows = await tx.auditLogRows(query);
  return rows.map((row) => ({
    ...row,
    eventName: EVENT_NAMES[row.event] ?? `event ${row.event}`,
    entityName: ENTITY_NAMES[row.entity] ?? `entity ${row.entity}`,
  }));
}

/** The id of the newest audit row; 0 when the log is empty. */
export function lastAuditId(tx: Tx): Promise<number> {
  return tx.lastAuditId();
}

/**
 * How far back {@link AuditFollower} looks again for events committed late:
 * on an engine whose ids are taken at INSERT but seen at COMMIT (PostgreSQL
 * with several writers), a row with a smaller id may appear after a greater
 * one was read.
 */
export interface FollowWindow {
  /** Rows whose id was taken up to this long (ms) before the newest read one's. */
  ms: number;
  /** At most this many ids below the newest read one. */
  ids: number;
}

/** The window `relay audit --follow` uses on PostgreSQL: 30 s, at most 10 000 ids. */
export const FOLLOW_WINDOW: FollowWindow = { ms: 30_000, ids: 10_000 };

/**
 * The window a follower of the database at `location` needs: PostgreSQL's
 * ids become visible at COMMIT, not in id order; SQLite's commit one at a
 * time, in order, and need none.
 */
export function followWindow(location: string): FollowWindow | null {
  return databaseEngine(location) === "postgres" ? FOLLOW_WINDOW : null;
}

/** Options of {@link AuditFollower}. */
export interface AuditFollowerOptions {
  /** Which rows. */
  selection: AuditSelection;
  /** The newest id already read (`lastAuditId` of the first listing). */
  afterId: number;
  /** Most rows read at once, and returned by one {@link AuditFollower.next}. */
  batch: number;
  /** Null where ids become visible in order (SQLite): only rows after the newest are read. */
  window: FollowWindow | null;
  /** A monotonic clock in ms (`performance.now`). */
  clock: () => number;
}

/**
 * The rows committed since the last look, each returned once. Without a
 * window, the rows after the newest id read. With one, the rows of the
 * window below it are read again too, and those not returned yet (committed
 * late) come with the new ones, in id order: a row is missed only if its
 * transaction stayed open longer than the window.
 */
export class AuditFollower {
  readonly #options: AuditFollowerOptions;
  /** The newest id read. */
  #lastId: number;
  /** Ids in the window already returned (or there at the start). */
  readonly #seen = new Set<number>();
  /** `#lastId` over time, oldest first, for the window's time bound. */
  #history: { at: number; lastId: number }[];

  constructor(options: AuditFollowerOptions) {
    this.#options = options;
    this.#lastId = options.afterId;
    this.#history = [{ at: options.clock(), lastId: options.afterId }];
  }

  /**
   * Takes note of the rows of the window already there, in the snapshot of
   * the first listing (`tx`), so that only rows committed later are
   * returned. Nothing to do without a window.
   */
  async start(tx: Tx): Promise<void> {
    if (this.#options.window === null) return;
    for await (const row of this.#rowsAfter(tx, this.#floor())) {
      if (row.id > this.#lastId) break;
      this.#seen.add(row.id);
    }
  }

  /**
   * The rows not returned yet, in id order, up to `batch` of them; `more`:
   * more may be waiting already.
   */
  async next(tx: Tx): Promise<{ records: AuditRecord[]; more: boolean }> {
    const { selection, batch, window } = this.#options;
    if (window === null) {
      const records = await listAudit(tx, {
        ...selection,
        afterId: this.#lastId,
        take: "first",
        limit: batch,
      });
      const more = records.length === batch;
      if (records.length > 0) this.#lastId = records[records.length - 1].id;
      // Past the rows the selection skips too, so that the next look starts at the newest.
      if (!more) this.#lastId = Math.max(this.#lastId, await tx.lastAuditId());
      return { records, more };
    }
    const records: AuditRecord[] = [];
    let more = false;
    for await (const row of this.#rowsAfter(tx, this.#floor())) {
      if (this.#seen.has(row.id)) continue;
      if (records.length === batch) {
        more = true;
        break;
      }
      records.push(row);
      this.#seen.add(row.id);
      this.#lastId = Math.max(this.#lastId, row.id);
    }
    // Past the rows the selection skips too: the window still looks below.
    if (!more) this.#lastId = Math.max(this.#lastId, await tx.lastAuditId());
    this.#remember();
    return { records, more };
  }

  /**
   * The lowest id read again: the newest id read `window.ms` ago (an id
   * below it was taken before that), and no more than `window.ids` below
   * the newest.
   */
  #floor(): number {
    const window = this.#options.window!;
    const then = this.#options.clock() - window.ms;
    const old = this.#history.findLast((sample) => sample.at <= then)?.lastId ?? -Infinity;
    return Math.max(old, this.#lastId - window.ids, 0);
  }

  /** Records the newest id read now; forgets what the window no longer covers. */
  #remember(): void {
    const now = this.#options.clock();
    this.#history.push({ at: now, lastId: this.#lastId });
    const then = now - this.#options.window!.ms;
    // Keep the newest sample at or before `then`, and all after it.
    const first = this.#history.findLastIndex((sample) => sample.at <= then);
    if (first > 0) this.#history = this.#history.slice(first);
    const floor = this.#floor();
    for (const id of this.#seen) if (id <= floor) this.#seen.delete(id);
  }

  /** The rows of the selection after `afterId`, in id order, read `batch` at a time. */
  async *#rowsAfter(tx: Tx, afterId: number): AsyncGenerator<AuditRecord> {
    const { selection, batch } = this.#options;
    for (let cursor = afterId;;) {
      const rows = await listAudit(tx, {
        ...selection,
        afterId: cursor,
        take: "first",
        limit: batch,
      });
      yield* rows;
      if (rows.length < batch) return;
      cursor = rows[rows.length - 1].id;
    }
  }
}
