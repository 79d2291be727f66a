/**
 * Who holds a lease: a node (a machine, `PUT /v1/nodes/{fingerprint}`) or a
 * user (a person on any machine, `PUT /v1/users/{email}`). Both are rows of
 * `nodes`, told apart by `nodes.holder_type` (the entity type id: 2 node,
 * 4 user) and by their key in `nodes.fingerprint`: a node's fingerprint as
 * given, a user's email behind {@link USER_KEY_PREFIX}, which starts with a
 * control character that no node fingerprint can hold (the API refuses them),
 * so the column's UNIQUE constraint keeps the two apart (migration 10).
 *
 * The lease logic (`lib/leases.ts`) is one implementation for both; a
 * holder only changes which audit entity and events it writes.
 *
 * @module
 */

import { EntityType, EventType } from "./audit.ts";

/** The kinds of lease holder. */
export type HolderKind = "node" | "user";

/** A lease holder: its kind and its key in `nodes.fingerprint`. */
export interface Holder {
  kind: HolderKind;
  /** The stored key: a node's fingerprint, or {@link USER_KEY_PREFIX} and the email. */
  key: string;
}

/** The audit vocabulary of one kind of holder. */
export interface HolderEvents {
  /** The audit entity type, also stored as `nodes.holder_type`. */
  entity: EntityType;
  activated: EventType;
  heartbeatPing: EventType;
  deactivated: EventType;
  culled: EventType;
}

/**
 * Nodes keep the reference's `node.*` events; users have events of their
 * own (`user.*`, migration 10), so the reference's documented queries on
 * `node.*` events still count machines only. License events
 * (`license.leased`, …) are the same for both: the license is the entity.
 */
export const HOLDER_EVENTS: Readonly<Record<HolderKind, HolderEvents>> = {
  node: {
    entity: EntityType.node,
    activated: EventType.nodeActivated,
    heartbeatPing: EventType.nodeHeartbeatPing,
    deactivated: EventType.nodeDeactivated,
    culled: EventType.nodeCulled,
  },
  user: {
    entity: EntityType.user,
    activated: EventType.userActivated,
    heartbeatPing: EventType.userHeartbeatPing,
    deactivated: EventType.userDeactivated,
    culled: EventType.userCulled,
  },
};

/**
 * What a user's key starts with in `nodes.fingerprint`: U+0001, which the
 * API refuses in a fingerprint (`invalid fingerprint`), then `user:`.
 */
export const USER_KEY_PREFIX = "\u0001user:";

/** The longest email accepted, in characters (RFC 5321's path limit). */
export const MAX_EMAIL_LENGTH = 254;

/**
 * A sane `local@domain`: a local part of 1–64 characters without spaces,
 * control characters or `@`; a domain of dot-separated labels of letters,
 * digits and hyphens.
 */
const EMAIL_SHAPE =
  /^[^\s@\p{Cc}]{1,64}@[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?)*$/u;

/**
 * The email as stored and compared: lowercase. Undefined for one that is too
 * long, has surrounding whitespace (refused, not trimmed) or is not shaped
 * `local@domain`.
 */
export function normalizeEmail(email: string): string | undefined {
  if (email.length > MAX_EMAIL_LENGTH || !EMAIL_SHAPE.test(email)) return undefined;
  return email.toLowerCase();
}

/** The holder of node `fingerprint`. */
export function nodeHolder(fingerprint: string): Holder {
  return { kind: "node", key: fingerprint };
}

/** The holder of user `email`, which must be normalised ({@link normalizeEmail}). */
export function userHolder(email: string): Holder {
  return { kind: "user", key: USER_KEY_PREFIX + email };
}

/** The holder a stored key (`nodes.fingerprint`) stands for. */
export function holderOfKey(key: string): Holder {
  return { kind: key.startsWith(USER_KEY_PREFIX) ? "user" : "node", key };
}

/** The holder's name: a node's fingerprint or a user's email. */
export function holderName(holder: Holder): string {
  return holder.kind === "user" ? holder.key.slice(USER_KEY_PREFIX.length) : holder.key;
}

/**
 * A stored key as the CLI and the status page show it: a node's fingerprint
 * as is, a user as `user alice@example.com`.
 */
export function holderLabel(key: string): string {
  const holder = holderOfKey(key);
  return holder.kind === "user" ? `user ${holderName(holder)}` : key;
}

/**
 * A stored key as JSON output names it: `{ node: fingerprint }` for a node,
 * `{ node: null, user: email }` for a user, so that a node's output is
 * unchanged and a user is never mistaken for one.
 */
export function holderJson(
  key: string | null,
  field = "node",
): Record<string, string | null> {
  if (key === null) return { [field]: null };
  const holder = holderOfKey(key);
  return holder.kind === "user" ? { [field]: null, user: holderName(holder) } : { [field]: key };
}
