/**
 * The reaper's statements on PostgreSQL: end the leases that expired, in
 * the caller's transaction, with their audit rows. `PgTx.reapExpired`
 * delegates here.
 *
 * @module
 */

import { EntityType, EventType } from "../../audit.ts";
import type { Reaped } from "../store.ts";
import type { AuditBuffer } from "./audit_buffer.ts";
import type { TransactionSql } from "./connect.ts";

/** A holder in a reap batch. */
type Holder = { id: number; holderType: number };

/** A lease the batch ended. */
type Released = { nodeId: number; poolId: number | null; auditId: number };

/**
 * See `Tx.reapExpired`. Locks the expired holders `FOR UPDATE SKIP LOCKED`:
 * one that another transaction is claiming or releasing for
 * (`PgTx.lockHolder`), or that another reaper took, is left to it. Leases
 * without a stored expiry first, then by stored expiry; each oldest first.
 * Audit rows go to `audit` (null: none are written).
 */
export async function reapExpired(
  sql: TransactionSql,
  audit: AuditBuffer | null,
  { now, cutoff, limit }: { now: number; cutoff: number | null; limit: number },
): Promise<Reaped> {
  const legacy = cutoff === null ? [] : await sql<Holder[]>`
    SELECT id, holder_type AS "holderType" FROM nodes
    WHERE deactivated_at IS NULL AND lease_expires_at IS NULL AND last_heartbeat_at <= ${cutoff}
    ORDER BY last_heartbeat_at LIMIT ${limit} FOR UPDATE SKIP LOCKED`;
  const stored = legacy.length >= limit ? [] : await sql<Holder[]>`
    SELECT id, holder_type AS "holderType" FROM nodes
    WHERE deactivated_at IS NULL AND lease_expires_at <= ${now}
    ORDER BY lease_expires_at LIMIT ${limit - legacy.length} FOR UPDATE SKIP LOCKED`;
  const batch = [...legacy, ...stored];
  if (batch.length === 0) return { holders: 0, leasePools: [] };
  const ids = batch.map((row) => row.id);
  const released = await sql<Released[]>`
    WITH old AS (
      SELECT id, node_id, pool_id, COALESCE(seat_of, id) AS audit_id FROM licenses
      WHERE node_id = ANY(${sql.array(ids)}::bigint[]) FOR UPDATE
    )
    UPDATE licenses l SET node_id = NULL, last_released_at = ${now}
    FROM old WHERE l.id = old.id
    RETURNING old.node_id AS "nodeId", old.pool_id AS "poolId", old.audit_id AS "auditId"`;
  await sql`
    UPDATE nodes SET deactivated_at = ${now} WHERE id = ANY(${sql.array(ids)}::bigint[])`;
  if (audit !== null) auditReaped(audit, { batch, released, now });
  // In reap order, as SQLite reports them.
  const order = new Map(ids.map((id, index) => [id, index]));
  const leasePools = released.toSorted((a, b) => order.get(a.nodeId)! - order.get(b.nodeId)!)
    .map((row) => row.poolId);
  return { holders: batch.length, leasePools };
}

/**
 * Per holder in reap order: license.lease_expired (if it leased one; the
 * entity is the license, the main row for a seat), then node.culled for a
 * node, user.culled for a user (`lib/holders.ts`).
 */
function auditReaped(
  audit: AuditBuffer,
  { batch, released, now }: { batch: Holder[]; released: Released[]; now: number },
): void {
  const leases = new Map(released.map((row) => [row.nodeId, row]));
  for (const node of batch) {
    const lease = leases.get(node.id);
    if (lease) {
      audit.add({
        event: EventType.licenseLeaseExpired,
        entity: EntityType.license,
        entityId: lease.auditId,
        poolId: lease.poolId,
        now,
      });
    }
    const user = node.holderType === EntityType.user;
    audit.add({
      event: user ? EventType.userCulled : EventType.nodeCulled,
      entity: user ? EntityType.user : EntityType.node,
      entityId: node.id,
      poolId: lease?.poolId ?? null,
      now,
    });
  }
}
