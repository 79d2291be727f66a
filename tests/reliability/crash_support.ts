/**
 * What the crash tests share: the clients' beliefs about each fingerprint
 * from acknowledged answers, a request whose outcome may never be seen, and
 * the check of a database (on either engine, see `backends.ts`) against
 * those beliefs: its leases are sound, its audit trail matches them, and
 * nothing acknowledged is lost.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { BackendDatabase } from "./backends.ts";

/**
 * What the clients know about a fingerprint from acknowledged responses:
 * whether it holds a lease (`unknown` after a request whose outcome was never
 * seen could have changed that), and the key of that lease when known.
 */
export interface Belief {
  holds: boolean | "unknown";
  /** The key it holds if it holds one (for `unknown`: if it still holds one). */
  key?: string;
}

/** A response as received, or undefined when the request failed (network error). */
export async function send(
  url: string,
  method: "PUT" | "DELETE",
  fingerprint: string,
): Promise<{ status: number; body: Record<string, unknown> | null } | undefined> {
  let response: Response;
  try {
    response = await fetch(`${url}/v1/nodes/${fingerprint}`, {
      method,
      signal: AbortSignal.timeout(5_000),
    });
  } catch {
    return undefined;
  }
  // The status line came after the server committed: it is acknowledged even
  // if the body is cut off by the kill.
  let body: Record<string, unknown> | null = null;
  try {
    const text = await response.text();
    body = text === "" ? null : JSON.parse(text);
  } catch {
    body = null;
  }
  return { status: response.status, body };
}

/** What {@link checkDatabase} reads a database with. */
export type DatabaseReader = Pick<
  BackendDatabase,
  "backend" | "rows" | "count" | "freeCountMismatches"
>;

/** The rows of `sql` with every value that looks like a number as a number. */
async function numericRows<T>(db: DatabaseReader, sql: string): Promise<T[]> {
  const rows = await db.rows<Record<string, unknown>>(sql);
  return rows.map((row) =>
    Object.fromEntries(
      Object.entries(row).map((
        [k, v],
      ) => [k, typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : v]),
    )
  ) as T[];
}

/**
 * Checks a database against the clients' beliefs (SQLite: the dead server's
 * file, also its integrity). `licenses` is how many there are in all.
 */
export async function checkDatabase(
  db: DatabaseReader,
  beliefs: Map<string, Belief>,
  { round, licenses: total }: { round: number; licenses: number },
): Promise<{ checked: number; excluded: number }> {
  const at = `round ${round}`;
  if (db.backend === "sqlite") {
    assert.deepEqual(await db.rows("PRAGMA integrity_check"), [{ integrity_check: "ok" }], at);
    assert.deepEqual(await db.rows("PRAGMA foreign_key_check"), [], `${at}: foreign keys`);
  }

  // Leases: node_id unique, every holder an active node.
  const leases = await numericRows<
    {
      id: number;
      key: string;
      node_id: number;
      fingerprint: string | null;
      deactivated_at: number | null;
    }
  >(
    db,
    `SELECT l.id, l.key, l.node_id, n.fingerprint, n.deactivated_at
     FROM licenses l LEFT JOIN nodes n ON n.id = l.node_id WHERE l.node_id IS NOT NULL`,
  );
  assert.equal(new Set(leases.map((l) => l.node_id)).size, leases.length, `${at}: node_id unique`);
  for (const lease of leases) {
    assert.ok(
      lease.fingerprint !== null,
      `${at}: license ${lease.id} leased to a node that exists`,
    );
    assert.equal(lease.deactivated_at, null, `${at}: license ${lease.id} leased to an active node`);
  }
  const active = (await db.rows<{ fingerprint: string }>(
    "SELECT fingerprint FROM nodes WHERE deactivated_at IS NULL",
  )).map((n) => n.fingerprint).toSorted();
  assert.deepEqual(
    active,
    leases.map((l) => l.fingerprint).toSorted(),
    `${at}: the active nodes are exactly the nodes holding a license`,
  );

  // Every license leased or free; SQLite's free_counts counts the free ones.
  const free = await db.count("SELECT count(*) AS n FROM licenses WHERE node_id IS NULL");
  assert.deepEqual(await db.freeCountMismatches(), [], `${at}: free_counts = free licenses`);
  assert.equal(leases.length + free, total, `${at}: every license leased or free`);

  // Audit matches state: each lease is recorded with its license and node.
  const licenses = await numericRows<
    { id: number; leased: number; claims: number; last_event: number | null }
  >(
    db,
    `SELECT l.id, CASE WHEN l.node_id IS NOT NULL THEN 1 ELSE 0 END AS leased, l.claims,
       (SELECT a.event_type_id FROM audit_logs a
        WHERE a.entity_type_id = 1 AND a.entity_id = l.id AND a.event_type_id BETWEEN 2 AND 6
        ORDER BY a.id DESC LIMIT 1) AS last_event
     FROM licenses l`,
  );
  for (const license of licenses) {
    if (license.leased) {
      assert.ok(
        license.last_event === 3 || license.last_event === 4,
        `${at}: leased license ${license.id}: latest license event ${license.last_event}`,
      );
    } else if (license.claims > 0 || license.last_event !== null) {
      assert.ok(
        license.last_event === 5 || license.last_event === 6 || license.last_event === 2,
        `${at}: free license ${license.id} (${license.claims} claims): latest license event ${license.last_event}`,
      );
    }
  }
  const [{ claims, leased_events }] = await numericRows<{ claims: number; leased_events: number }>(
    db,
    `SELECT (SELECT sum(claims) FROM licenses) AS claims,
       (SELECT count(*) FROM audit_logs WHERE event_type_id = 3) AS leased_events`,
  );
  assert.equal(leased_events, claims, `${at}: one license.leased record per claim`);
  const nodes = await numericRows<
    { id: number; active: number; holding: number; last_event: number | null; denials: number }
  >(
    db,
    `SELECT n.id, CASE WHEN n.deactivated_at IS NULL THEN 1 ELSE 0 END AS active,
       (SELECT count(*) FROM audit_logs a
        WHERE a.entity_type_id = 2 AND a.entity_id = n.id AND a.event_type_id = 12) AS denials,
       CASE WHEN EXISTS (SELECT 1 FROM licenses l WHERE l.node_id = n.id) THEN 1 ELSE 0 END
         AS holding,
       (SELECT a.event_type_id FROM audit_logs a
        WHERE a.entity_type_id = 2 AND a.entity_id = n.id AND a.event_type_id BETWEEN 7 AND 10
        ORDER BY a.id DESC LIMIT 1) AS last_event
     FROM nodes n`,
  );
  for (const node of nodes) {
    if (node.holding) {
      assert.ok(
        node.last_event === 7 || node.last_event === 8,
        `${at}: node ${node.id} holds a license: latest node event ${node.last_event}`,
      );
    } else {
      // A node only ever denied (410) has a row for its license.denied records and no lifecycle.
      assert.ok(
        !node.active &&
          (node.last_event === 9 || node.last_event === 10 ||
            (node.last_event === null && node.denials > 0)),
        `${at}: node ${node.id} holds nothing: active ${node.active}, latest node event ${node.last_event}`,
      );
    }
  }

  // Nothing acknowledged is lost.
  const leaseOf = new Map(leases.map((l) => [l.fingerprint!, l.key]));
  let checked = 0;
  let excluded = 0;
  for (const [fingerprint, belief] of beliefs) {
    if (belief.holds === "unknown") {
      excluded++;
      continue;
    }
    checked++;
    if (belief.holds) {
      assert.ok(leaseOf.has(fingerprint), `${at}: ${fingerprint} was told it holds a lease`);
      if (belief.key !== undefined) {
        assert.equal(leaseOf.get(fingerprint), belief.key, `${at}: ${fingerprint} holds its key`);
      }
    } else {
      assert.ok(!leaseOf.has(fingerprint), `${at}: ${fingerprint} was told it holds nothing`);
    }
  }
  return { checked, excluded };
}
