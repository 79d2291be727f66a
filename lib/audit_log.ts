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
