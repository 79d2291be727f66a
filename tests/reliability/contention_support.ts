/**
 * What the contention tests share: HTTP clients that claim and release,
 * bursts of them spread over replicas, and the checks that the database
 * agrees with what the clients were told (on either engine, see
 * `backends.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ServerProcess } from "../helpers.ts";
import type { BackendDatabase } from "./backends.ts";

/** Licenses every scenario starts with. */
export const LICENSES = 100;
/** Clients of a burst. */
export const CLIENTS = 500;

/** What a client got back: status and parsed JSON body (null when empty). */
export interface Answer {
  status: number;
  body: Record<string, unknown> | null;
}

/** One request, read to the end; every request gives up after 30 s. */
export async function send(
  url: string,
  method: "PUT" | "DELETE",
  fingerprint: string,
): Promise<Answer> {
  const response = await fetch(`${url}/v1/nodes/${fingerprint}`, {
    method,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : JSON.parse(text) };
}

/** One burst client's outcome. */
export interface BurstResult {
  fingerprint: string;
  status: number;
  key?: string;
}

/**
 * `count` clients with distinct fingerprints, each sending one claim, all
 * started in the same tick; client `i` talks to `urls[i % urls.length]`.
 * `startAt(i)` optionally delays a client by that many ms.
 */
export async function burst(
  urls: string[],
  prefix: string,
  count: number,
  startAt?: (i: number) => number,
): Promise<{ results: BurstResult[]; peakInFlight: number }> {
  let inFlight = 0;
  let peakInFlight = 0;
  const results = await Promise.all(
    Array.from({ length: count }, async (_, i): Promise<BurstResult> => {
      const delay = startAt?.(i) ?? 0;
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      const fingerprint = `${prefix}-${i}`;
      inFlight++;
      peakInFlight = Math.max(peakInFlight, inFlight);
      try {
        const answer = await send(urls[i % urls.length], "PUT", fingerprint);
        const key = answer.status === 201 ? String(answer.body?.license_key) : undefined;
        return { fingerprint, status: answer.status, key };
      } finally {
        inFlight--;
      }
    }),
  );
  return { results, peakInFlight };
}

/** How many of each status. */
export function tally(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

/** A leased license as the database holds it. */
export interface LeaseRow {
  license_id: number;
  key: string;
  node_id: number;
  fingerprint: string | null;
  deactivated_at: number | null;
}

/** Every leased license with its node (if that node exists), by license id. */
export async function leaseRows(db: BackendDatabase): Promise<LeaseRow[]> {
  const rows = await db.rows<LeaseRow>(
    `SELECT l.id AS license_id, l.key, l.node_id, n.fingerprint, n.deactivated_at
     FROM licenses l LEFT JOIN nodes n ON n.id = l.node_id
     WHERE l.node_id IS NOT NULL ORDER BY l.id`,
  );
  return rows.map((row) => ({
    ...row,
    license_id: Number(row.license_id),
    node_id: Number(row.node_id),
  }));
}

/**
 * The database agrees with the clients of a burst: exactly the 201s lease,
 * each to its own active node, with the key that client received, and one
 * `license.leased` and `node.activated` record each.
 */
export async function assertBurstConsistent(
  db: BackendDatabase,
  results: BurstResult[],
  expected: number,
): Promise<void> {
  const created = results.filter((r) => r.status === 201);
  assert.equal(created.length, expected, "201s");
  const keys = created.map((r) => r.key);
  assert.equal(new Set(keys).size, created.length, "every 201 carries a distinct license key");

  const rows = await leaseRows(db);
  assert.equal(rows.length, expected, "licenses with node_id set");
  assert.equal(new Set(rows.map((r) => r.node_id)).size, rows.length, "node_ids distinct");
  for (const row of rows) {
    assert.ok(row.fingerprint !== null, `license ${row.license_id}: node ${row.node_id} exists`);
    assert.equal(row.deactivated_at, null, `license ${row.license_id}: node is active`);
  }
  const leasedTo = new Map(rows.map((r) => [r.fingerprint, r.key]));
  for (const r of created) {
    assert.equal(leasedTo.get(r.fingerprint), r.key, `${r.fingerprint}: its 201 key is its lease`);
  }
  assert.equal(
    await db.count("SELECT count(*) AS n FROM nodes WHERE deactivated_at IS NULL"),
    expected,
    "active nodes are exactly the 201s",
  );
  assert.equal(
    await db.count("SELECT count(*) AS n FROM audit_logs WHERE event_type_id = 3"),
    expected,
    "license.leased records",
  );
  assert.equal(
    await db.count("SELECT count(*) AS n FROM audit_logs WHERE event_type_id = 7"),
    expected,
    "node.activated records",
  );
  assert.deepEqual(await db.freeCountMismatches(), [], "free_counts = free licenses");
}

/** No "database is locked" (or any other lock error) anywhere in this output. */
export function assertNoLockErrors(label: string, output: string): void {
  assert.doesNotMatch(output, /locked|SQLITE_BUSY|deadlock/i, `${label} reported a lock error`);
}

/** Stops a server gracefully and checks it exited 0 without lock errors or failed requests. */
export async function stopCleanly(server: ServerProcess, label: string): Promise<void> {
  const { status, stdout, stderr } = await server.stop("SIGTERM");
  assert.equal(status.code, 0, `${label} exit code; stderr: ${stderr}`);
  assertNoLockErrors(`${label} stdout`, stdout);
  assertNoLockErrors(`${label} stderr`, stderr);
  assert.doesNotMatch(stdout, /"level":"error"/, `${label} logged an error`);
}

/** Stops every replica gracefully (see {@link stopCleanly}), named `label 1`, `label 2`… */
export async function stopAllCleanly(servers: ServerProcess[], label: string): Promise<void> {
  for (const [i, server] of servers.entries()) await stopCleanly(server, `${label} ${i + 1}`);
}
