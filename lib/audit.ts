/**
 * Audit log vocabulary: the event and entity types that the reference Relay
 * stores in its `event_types` and `entity_types` tables. The numbers are part of
 * the database format (documented audit queries join on them): never renumber.
 *
 * Audit rows are written inside the transaction of the change they record
 * (see `Tx.audit`), so a crash can never keep one without the other.
 *
 * @module
 */

/** Ids of the rows in `event_types`. */
export const EventType = {
  unknown: 0,
  licenseAdded: 1,
  licenseRemoved: 2,
  licenseLeased: 3,
  licenseLeaseExtended: 4,
  licenseReleased: 5,
  licenseLeaseExpired: 6,
  nodeActivated: 7,
  nodeHeartbeatPing: 8,
  nodeDeactivated: 9,
  nodeCulled: 10,
  poolAdded: 11,
  /** A claim answered 410 (entity: the node); ours, not the reference's. */
  licenseDenied: 12,
  /** An operator ended a lease with `relay release` (entity: the license); ours. */
  licenseOperatorReleased: 13,
  /** `relay add` replaced a license's file with a newer one in place (entity: the license); ours. */
  licenseRenewed: 14,
  /** A user got a lease (entity: the user); ours, the user's `node.activated`. */
  userActivated: 15,
  /** A user's lease was granted or extended (entity: the user); ours. */
  userHeartbeatPing: 16,
  /** A user released its lease, or an operator ended it (entity: the user); ours. */
  userDeactivated: 17,
  /** A user's lease expired (entity: the user); ours. */
  userCulled: 18,
} as const;

/** One of the {@link EventType} ids. */
export type EventType = typeof EventType[keyof typeof EventType];

/** Events that grant a seat (+1 in the status page's history). */
export const SEAT_GAINED_EVENTS: readonly EventType[] = [EventType.licenseLeased];

/** Events that end a seat (−1 in the status page's history). */
export const SEAT_LOST_EVENTS: readonly EventType[] = [
  EventType.licenseReleased,
  EventType.licenseLeaseExpired,
  EventType.licenseOperatorReleased,
];

/** `(1,2,3)` from event ids, integers of our own: safe to inline in SQL. */
export function eventIdList(ids: readonly EventType[]): string {
  return `(${ids.map((id) => Math.trunc(id)).join(",")})`;
}

/** Ids of the rows in `entity_types`. */
export const EntityType = {
  unknown: 0,
  license: 1,
  node: 2,
  pool: 3,
  /** A user holding a seat (`PUT /v1/users/{email}`, a row of `nodes`); ours. */
  user: 4,
} as const;

/** One of the {@link EntityType} ids. */
export type EntityType = typeof EntityType[keyof typeof EntityType];
