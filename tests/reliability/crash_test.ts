/**
 * Reliability: nothing acknowledged is lost when `relay serve` is killed.
 *
 * Twenty rounds on one database file: start a real server, run concurrent
 * claims, heartbeats and releases, SIGKILL it after a random delay, then read
 * the file (read-only, server dead) and check its integrity and that it holds
 * every lease a client was told about and none that a client released. Each
 * next round's server must start on that file, and its answers must agree
 * with what clients were told before the crash (a holder's claim is a 202,
 * never a new 201; a holder's release is a 204, never a 404).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  addMinted,
  dbPath,
  FREE_COUNT_MISMATCHES,
  prng,
  query,
  startServer,
  tempDir,
} from "../helpers.ts";

/** Rounds of load and SIGKILL; `RELAY_SOAK_ROUNDS` raises it for a soak run. */
const ROUNDS = Number(Deno.env.get("RELAY_SOAK_ROUNDS") ?? 20);
const LICENSES = 200;
const FINGERPRINTS = 300;
/** Concurrent clients per round. */
const WORKERS = 40;
/** Requests per client per round, at most (a round lasts ≤ 300 ms anyway). */
const MAX_REQUESTS_PER_WORKER = 2_000;
const SEED = Number(Deno.env.get("RELAY_SOAK_SEED") ?? 0xc0ffee);
/**
 * Long enough that no lease expires during the test (which takes well under a
 * minute), so "still holds" never has to allow for expiry.
 */
const TTL = "5m";

/**
 * What the clients know about a fingerprint from acknowledged responses:
 * whether it holds a lease (`unknown` after a request whose outcome was never
 * seen could have changed that), and the key of that lease when known.
 */
interface Belief {
  holds: boolean | "unknown";
  /** The key it holds if it holds one (for `unknown`: if it still holds one). */
  key?: string;
}

/** A response as received, or undefined when the request failed (network error). */
async function send(
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

function rows<T>(db: string, sql: string): T[] {
  return query<T>(db, sql);
}

/** Checks the dead server's database file against the clients' beliefs. */
function checkDatabase(
  db: string,
  beliefs: Map<string, Belief>,
  round: number,
): { checked: number; excluded: number } {
  const at = `round ${round}`;
  assert.deepEqual(rows(db, "PRAGMA integrity_check"), [{ integrity_check: "ok" }], at);
  assert.deepEqual(rows(db, "PRAGMA foreign_key_check"), [], `${at}: foreign keys`);

  // Leases: node_id unique, every holder an active node.
  const leases = rows<
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
  const active = rows<{ fingerprint: string }>(
    db,
    "SELECT fingerprint FROM nodes WHERE deactivated_at IS NULL ORDER BY fingerprint",
  ).map((n) => n.fingerprint);
  assert.deepEqual(
    active,
    leases.map((l) => l.fingerprint).toSorted(),
    `${at}: the active nodes are exactly the nodes holding a license`,
  );

  // free_counts counts exactly the free licenses of each pool.
  const free = rows<{ pool: number; id: number }>(
    db,
    "SELECT IFNULL(pool_id, 0) AS pool, id FROM licenses WHERE node_id IS NULL ORDER BY 1, 2",
  );
  assert.deepEqual(rows(db, FREE_COUNT_MISMATCHES), [], `${at}: free_counts = free licenses`);
  assert.equal(leases.length + free.length, LICENSES, `${at}: every license leased or free`);

  // Audit matches state: each lease is recorded with its license and node.
  const licenses = rows<{ id: number; leased: number; claims: number; last_event: number | null }>(
    db,
    `SELECT l.id, l.node_id IS NOT NULL AS leased, l.claims,
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
  const [{ claims, leased_events }] = rows<{ claims: number; leased_events: number }>(
    db,
    `SELECT (SELECT sum(claims) FROM licenses) AS claims,
       (SELECT count(*) FROM audit_logs WHERE event_type_id = 3) AS leased_events`,
  );
  assert.equal(leased_events, claims, `${at}: one license.leased record per claim`);
  const nodes = rows<
    { id: number; active: number; holding: number; last_event: number | null; denials: number }
  >(
    db,
    `SELECT n.id, n.deactivated_at IS NULL AS active,
       (SELECT count(*) FROM audit_logs a
        WHERE a.entity_type_id = 2 AND a.entity_id = n.id AND a.event_type_id = 12) AS denials,
       EXISTS (SELECT 1 FROM licenses l WHERE l.node_id = n.id) AS holding,
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

Deno.test("relay serve killed with SIGKILL 20 times loses nothing it acknowledged", async () => {
  const started = performance.now();
  await using dir = await tempDir();
  await addMinted(dir.path, LICENSES);
  const db = dbPath(dir.path);
  const random = prng(SEED);
  const fingerprints = Array.from({ length: FINGERPRINTS }, (_, i) => `crash-${i}`);
  // A new database: nobody holds anything.
  const beliefs = new Map<string, Belief>(fingerprints.map((fp) => [fp, { holds: false }]));
  const acknowledged: Record<string, number> = {};
  let unknownRequests = 0;
  let checkedFingerprints = 0;
  let excludedFingerprints = 0;

  for (let round = 1; round <= ROUNDS; round++) {
    const strategy = ["fifo", "lifo", "rand"][round % 3];
    const server = await startServer(["--ttl", TTL, "--strategy", strategy], { cwd: dir.path });
    // Killed after a random number of acknowledged answers, not a random
    // time: on a busy machine a time window may hold few requests, and every
    // round must kill the server in the middle of real traffic.
    const killAfter = 30 + Math.floor(random() * 51);
    let roundAcks = 0;
    const { promise: enoughAcks, resolve: onEnoughAcks } = Promise.withResolvers<void>();
    const errors: string[] = [];
    const busy = new Set<string>();
    let stopping = false;

    // Each fingerprint has at most one request in flight, so "its last
    // acknowledged response" is well defined.
    const worker = async () => {
      for (let n = 0; n < MAX_REQUESTS_PER_WORKER && !stopping; n++) {
        let index = Math.floor(random() * FINGERPRINTS);
        while (busy.has(fingerprints[index])) index = (index + 1) % FINGERPRINTS;
        const fingerprint = fingerprints[index];
        const before = beliefs.get(fingerprint)!;
        const put = before.holds === true
          ? random() < 0.7 // heartbeat, or release
          : before.holds === false
          ? random() < 0.85 // claim, or a release that should find nothing
          : random() < 0.5;
        const method = put ? "PUT" : "DELETE";
        busy.add(fingerprint);
        const answer = await send(server.url, method, fingerprint);
        busy.delete(fingerprint);
        if (answer === undefined) {
          // Unknown outcome. A holder's claim only extends, and a release by a
          // non-holder changes nothing; anything else may have changed it, and
          // a release never creates a lease, so its key (if it holds) stays.
          unknownRequests++;
          if ((put && before.holds === true) || (!put && before.holds === false)) continue;
          beliefs.set(fingerprint, { holds: "unknown", key: put ? undefined : before.key });
          continue;
        }
        const { status, body } = answer;
        const label = `${method} ${status}`;
        acknowledged[label] = (acknowledged[label] ?? 0) + 1;
        if (++roundAcks >= killAfter) onEnoughAcks();
        const expected = before.holds === true
          ? (put ? [202] : [204])
          : before.holds === false
          ? (put ? [201, 410] : [404])
          : (put ? [201, 202, 410] : [204, 404]);
        if (!expected.includes(status)) {
          errors.push(
            `${fingerprint} (holds ${before.holds}): ${label} ${
              JSON.stringify(body)
            }, expected ${expected}`,
          );
          stopping = true;
          continue;
        }
        if (status === 201) {
          const key = body?.license_key;
          beliefs.set(fingerprint, { holds: true, key: typeof key === "string" ? key : undefined });
        } else if (status === 202) {
          beliefs.set(fingerprint, { holds: true, key: before.key });
        } else {
          beliefs.set(fingerprint, { holds: false });
        }
      }
    };

    const killer = (async () => {
      await enoughAcks;
      stopping = true;
      return await server.stop("SIGKILL");
    })();
    await Promise.all(Array.from({ length: WORKERS }, worker));
    // Workers that stopped on their own (a wrong answer) must not leave the killer waiting.
    onEnoughAcks();
    const { status, stdout } = await killer;
    assert.deepEqual(errors, [], `round ${round}: answers agree with what clients were told`);
    assert.equal(status.signal, "SIGKILL", `round ${round}: the server was killed`);
    assert.doesNotMatch(stdout, /"level":"error"|locked/i, `round ${round}: server log`);

    const { checked, excluded } = checkDatabase(db, beliefs, round);
    checkedFingerprints += checked;
    excludedFingerprints += excluded;
  }

  const acked = (acknowledged["PUT 201"] ?? 0) + (acknowledged["PUT 202"] ?? 0) +
    (acknowledged["DELETE 204"] ?? 0);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `${ROUNDS} rounds in ${seconds} s: ${acked} acknowledged 201/202/204 checked ` +
      `(${JSON.stringify(acknowledged)}), ${unknownRequests} requests with unknown outcome, ` +
      `${checkedFingerprints} fingerprint states checked, ${excludedFingerprints} excluded as possibly changed`,
  );
  assert.ok(acked > 500, `${acked} acknowledged 201/202/204 responses`);
  for (const label of ["PUT 201", "PUT 202", "DELETE 204"]) {
    assert.ok((acknowledged[label] ?? 0) > 0, `some ${label}`);
  }
  assert.ok(unknownRequests > 0, "some requests were cut off by a kill");
});
