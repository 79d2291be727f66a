/**
 * Multi-seat licenses (`relay add --seats N`) leased through a real server:
 * N holders (nodes and users) lease one file at once, a release or a reap
 * frees one seat, `del` refuses while a seat is leased and `--force` ends
 * each lease, `release --license` ends every seat's lease. Each scenario
 * runs on SQLite and on PostgreSQL (see ../server/scenario_support.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { FREE_COUNT_MISMATCHES } from "../helpers.ts";
import { createdBody, errorBody } from "../server/http_support.ts";
import { type Scenario, scenario, type ScenarioDatabase } from "../server/scenario_support.ts";

const TTL = 60;

/** Adds one file with these limits, as `seats` seats. */
async function addSeats(
  db: ScenarioDatabase,
  limits: { maxMachines?: number; maxUsers?: number },
  seats: number,
  pool?: string,
) {
  const [file] = await db.add(1, { mint: limits, seats, pool });
  return file;
}

function rows(db: ScenarioDatabase) {
  return db.rows<{ guid: string; seat_of: number | null; node_id: number | null }>(
    "SELECT guid, seat_of, node_id FROM licenses ORDER BY id",
  );
}

/** SQLite's free counters agree with the free licenses (PostgreSQL keeps none). */
async function assertFreeCounts(s: Scenario) {
  if (s.backend === "sqlite") assert.deepEqual(await s.db.rows(FREE_COUNT_MISMATCHES), []);
}

scenario(
  "N holders, nodes and users, lease one multi-seat file at once; the next gets 410; a release or reap frees one seat",
  async (_t, s) => {
    const db = s.db;
    const file = await addSeats(db, { maxMachines: 3, maxUsers: 3 }, 3, "prod");
    const main = (await db.license(file.key)).id;
    const pool = await db.poolId("prod");

    const server = await s.serve([
      "--ttl",
      `${TTL}s`,
      "--cull-interval",
      "1h",
      "--strategy",
      "rand",
    ]);
    const target = server;
    const t0 = server.clock.unix();

    const replies = await Promise.all([
      s.claim(target, "node-a", "prod"),
      s.claim(target, "node-b", "prod"),
      s.call(target, "PUT", "/v1/users/alice@example.com", { "Relay-Pool": "prod" }),
    ]);
    for (const reply of replies) {
      assert.equal(reply.status, 201, reply.body);
      assert.equal(reply.body, createdBody(file.certificate, file.key, t0, TTL));
      assert.equal(reply.headers.get("Relay-License-Id"), file.id);
    }
    assert.equal((await rows(db)).filter((row) => row.node_id !== null).length, 3);
    const full = await s.claim(target, "node-d", "prod");
    assert.equal(full.status, 410);
    assert.equal(full.body, errorBody("no licenses available"));

    // A release frees that seat only; node-d gets it, with the same file.
    assert.equal((await s.release(target, "node-b", "prod")).status, 204);
    server.clock.advance(30);
    const d = await s.claim(target, "node-d", "prod");
    assert.equal(d.status, 201);
    assert.equal(d.body, createdBody(file.certificate, file.key, t0 + 30, TTL));
    assert.equal(d.headers.get("Relay-License-Id"), file.id);

    const extended = await s.call(target, "PUT", "/v1/users/alice@example.com", {
      "Relay-Pool": "prod",
    });
    assert.equal(extended.status, 202);
    assert.equal(extended.headers.get("Relay-License-Id"), file.id);

    // node-a's lease expires (t0 + 60); a claim reaps that one seat and takes it.
    server.clock.advance(40);
    const e = await s.claim(target, "node-e", "prod");
    assert.equal(e.status, 201);
    assert.equal(e.headers.get("Relay-License-Id"), file.id);
    assert.equal((await rows(db)).filter((row) => row.node_id !== null).length, 3);
    await assertFreeCounts(s);

    // Every license event names the license itself, never a seat row.
    const licenseEvents = (await db.auditTrail()).filter(([, entity]) => entity === "license");
    assert.deepEqual(licenseEvents.map(([event]) => event), [
      "license.added",
      "license.leased",
      "license.leased",
      "license.leased",
      "license.released",
      "license.leased",
      "license.lease_extended",
      "license.lease_expired",
      "license.leased",
    ]);
    for (const [, , id, poolId] of licenseEvents) {
      assert.equal(id, main);
      assert.equal(poolId, pool);
    }
    // The reference's documented audit queries still run, and name the license.
    const recent = await db.rows<{ entity_id: number }>(
      `SELECT audit_logs.* FROM audit_logs
     INNER JOIN event_types ON event_types.id = audit_logs.event_type_id
     WHERE event_types.name = 'license.leased'
     ORDER BY audit_logs.created_at DESC LIMIT 5`,
    );
    assert.equal(recent.length, 5);
    assert.ok(recent.every((row) => row.entity_id === main));
    // The README's queries for each engine: SQLite's datetime() and IFNULL, psql's
    // to_timestamp() and COALESCE.
    const sqlite = s.backend === "sqlite";
    const time = sqlite
      ? "datetime(audit_logs.created_at, 'unixepoch')"
      : "to_timestamp(audit_logs.created_at)";
    const history = await db.rows(
      `SELECT ${time} AS created_at,
       event_types.name AS event_type, entity_types.name AS entity_type,
       audit_logs.entity_id, audit_logs.pool_id, pools.name AS pool_name
     FROM audit_logs
     INNER JOIN event_types ON event_types.id = audit_logs.event_type_id
     INNER JOIN entity_types ON entity_types.id = audit_logs.entity_type_id
     LEFT OUTER JOIN pools ON pools.id = audit_logs.pool_id
     ORDER BY audit_logs.created_at ASC`,
    );
    assert.equal(history.length, (await db.auditTrail()).length);
    assert.deepEqual(
      await db.rows(
        `SELECT substr(nodes.fingerprint, 7) AS email, ${
          sqlite ? "IFNULL" : "COALESCE"
        }(main.guid, licenses.guid) AS guid
       FROM nodes INNER JOIN licenses ON licenses.node_id = nodes.id
       LEFT JOIN licenses AS main ON main.id = licenses.seat_of
       WHERE nodes.holder_type = 4`,
      ),
      [{ email: "alice@example.com", guid: file.id }],
    );
    assert.equal(
      (await db.rows(
        "SELECT audit_logs.* FROM audit_logs ORDER BY audit_logs.created_at DESC LIMIT 25",
      ))
        .length,
      Math.min(25, history.length),
    );
  },
  // --strategy rand, and three claims at once: the engines may seat them differently.
  { compare: false },
);

scenario(
  "del of a multi-seat license refuses while a seat is leased, and --force ends each lease",
  async (_t, s) => {
    const db = s.db;
    const file = await addSeats(db, { maxMachines: 3 }, 3);
    const main = (await db.license(file.key)).id;
    {
      const target = await s.serve(["--ttl", `${TTL}s`]);
      assert.equal((await s.claim(target, "node-a")).status, 201);
      assert.equal((await s.claim(target, "node-b")).status, 201);
      await target.stop();
    }
    const refused = await s.relay(["del", "--license", file.id], { now: s.clock.now() });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /is leased by node "node-[ab]"; .* or pass --force/);
    assert.equal((await rows(db)).length, 3);

    const forced = await s.relay(["del", "--license", file.id, "--force"], { now: s.clock.now() });
    assert.equal(forced.code, 0, forced.stderr);
    assert.deepEqual(await rows(db), []);
    await assertFreeCounts(s);
    if (s.backend === "sqlite") {
      assert.deepEqual(await db.rows("SELECT count(*) AS n FROM free_counts WHERE free <> 0"), [{
        n: 0,
      }]);
    }
    assert.deepEqual(
      (await db.auditTrail()).filter(([, entity]) => entity === "license").slice(-3),
      [
        ["license.released", "license", main, null],
        ["license.released", "license", main, null],
        ["license.removed", "license", main, null],
      ],
    );
  },
);

scenario(
  "relay release --license ends every seat's lease of a multi-seat license",
  async (_t, s) => {
    const db = s.db;
    const file = await addSeats(db, { maxUsers: 2 }, 2);
    {
      const target = await s.serve(["--ttl", `${TTL}s`]);
      assert.equal((await s.claim(target, "node-a")).status, 201);
      assert.equal((await s.call(target, "PUT", "/v1/users/carol@example.com")).status, 201);
      await target.stop();
    }
    const released = await s.relay(["release", "--license", file.id], { now: s.clock.now() });
    assert.equal(released.code, 0, released.stderr);
    assert.equal(
      released.stdout,
      `lease released: license ${file.id}, node node-a\n` +
        `lease released: license ${file.id}, user carol@example.com\n`,
    );
    assert.ok((await rows(db)).every((row) => row.node_id === null));
    const again = await s.relay(["release", "--license", file.id], { now: s.clock.now() });
    assert.equal(again.code, 1);
    assert.equal(again.stderr, `error: License "${file.id}" is not leased\n`);
  },
);
