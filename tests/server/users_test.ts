/**
 * User seats (`PUT`/`GET`/`DELETE /v1/users/{email}`): the same leases as
 * nodes, held by a user on any machine, with emails compared in lowercase,
 * a user and a node of the same string kept apart, `user.*` audit events,
 * reaping, denials, waits, tokens and metrics. Real server in-process, with a
 * clock the test moves; each scenario runs on SQLite and on PostgreSQL, and
 * the engines' replies and rows are compared (see scenario_support.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  assertEmpty,
  assertJson,
  assertSigned,
  call,
  createdBody,
  errorBody,
  type Reply,
  sleep,
  type Target,
} from "./http_support.ts";
import { samples } from "./metrics_support.ts";
import { scenario, type ScenarioDatabase } from "./scenario_support.ts";

const TTL = 60;
const ALICE = "alice@example.com";
/** How a user's key is stored in `nodes.fingerprint` (lib/holders.ts). */
const ALICE_KEY = `\u0001user:${ALICE}`;

type Call = (
  target: Target,
  method: string,
  path: string,
  headers?: Record<string, string>,
) => Promise<Reply>;

/** `METHOD /v1/users/{email}` through `send` (the scenario's `call`, kept for the comparison). */
function users(send: Call) {
  return (target: Target, method: string, email: string, pool?: string): Promise<Reply> =>
    send(target, method, `/v1/users/${email}`, pool === undefined ? {} : { "Relay-Pool": pool });
}

function holders(db: ScenarioDatabase) {
  return db.rows<{ id: number; fingerprint: string; holder_type: number; deactivated_at: number }>(
    "SELECT id, fingerprint, holder_type, deactivated_at FROM nodes ORDER BY id",
  );
}

async function rowIdOf(db: ScenarioDatabase, table: string, column: string, value: string) {
  return (await db.rows<{ id: number }>(`SELECT id FROM ${table} WHERE ${column} = ?`, value))[0]
    .id;
}

scenario(
  "PUT, GET and DELETE /v1/users/{email} lease a seat to a user, any case, audited as user.*",
  async (_t, s) => {
    const user = users(s.call);
    const db = s.db;
    const [license] = await db.add(1, { pool: "prod" });
    const server = await s.serve(
      ["--ttl", `${TTL}s`, "--cull-interval", "1h", "--signing-secret", "s3cret"],
      {},
    );
    const target = server;
    const t0 = server.clock.unix();
    const pool = await rowIdOf(db, "pools", "name", "prod");
    const licenseId = await rowIdOf(db, "licenses", "guid", license.id);

    const created = await user(target, "PUT", "Alice@Example.COM", "prod");
    assertJson(created, 201, createdBody(license.certificate, license.key, t0, TTL));
    await assertSigned(created, "s3cret");
    assert.equal(created.headers.get("Relay-License-Id"), license.id);
    assert.equal(created.headers.get("Relay-Pool"), "prod");
    assert.ok(created.headers.get("Relay-License-Expires"));
    assert.deepEqual(await holders(db), [
      { id: 1, fingerprint: ALICE_KEY, holder_type: 4, deactivated_at: null },
    ]);

    // The seat follows the user to another machine: a 202 carries the file and key too.
    server.clock.advance(10);
    const extended = await user(target, "PUT", ALICE, "prod");
    assertJson(extended, 202, createdBody(license.certificate, license.key, t0 + 10, TTL));
    assert.equal(extended.headers.get("Relay-License-Id"), license.id);

    server.clock.advance(5);
    const got = await user(target, "GET", "ALICE@example.com", "prod");
    assert.equal(got.status, 200);
    assert.deepEqual(JSON.parse(got.body), {
      license_file: new TextEncoder().encode(license.certificate).toBase64(),
      license_key: license.key,
      expires_at: t0 + 10 + TTL,
      expires_in: TTL - 5,
    });
    assert.equal(got.headers.get("Relay-License-Id"), license.id);

    assertEmpty(await user(target, "DELETE", "aLiCe@example.com", "prod"), 204);
    assertJson(await user(target, "DELETE", ALICE, "prod"), 404, errorBody("claim not found"));
    assertJson(await user(target, "GET", ALICE, "prod"), 404, errorBody("claim not found"));
    assert.deepEqual(
      await db.rows("SELECT node_id, claims, last_released_at FROM licenses"),
      [{ node_id: null, claims: 1, last_released_at: t0 + 15 }],
    );
    assert.equal((await holders(db))[0].deactivated_at, t0 + 15);
    assert.deepEqual((await db.auditTrail()).filter(([event]) => event !== "license.added"), [
      ["pool.added", "pool", pool, null],
      ["user.activated", "user", 1, pool],
      ["license.leased", "license", licenseId, pool],
      ["user.heartbeat_ping", "user", 1, pool],
      ["license.lease_extended", "license", licenseId, pool],
      ["user.heartbeat_ping", "user", 1, pool],
      ["license.released", "license", licenseId, pool],
      ["user.deactivated", "user", 1, pool],
    ]);
    // The reference's node.* events name machines only.
    const [machines] = await db.rows<{ n: number }>(
      "SELECT count(*) AS n FROM audit_logs WHERE event_type_id BETWEEN 7 AND 10",
    );
    assert.equal(Number(machines.n), 0);
  },
);

scenario("a user and a node with the same string are two holders of two seats", async (_t, s) => {
  const user = users(s.call);
  const db = s.db;
  const [first, second] = await db.add(2);
  const server = await s.serve(["--ttl", `${TTL}s`]);
  const target = server;
  const t0 = server.clock.unix();

  assertJson(
    await s.call(target, "PUT", `/v1/nodes/${ALICE}`),
    201,
    createdBody(first.certificate, first.key, t0, TTL),
  );
  assertJson(
    await user(target, "PUT", ALICE),
    201,
    createdBody(second.certificate, second.key, t0, TTL),
  );
  // Each is a holder of its own: a node's second PUT extends the node's lease only.
  assert.equal((await s.call(target, "PUT", `/v1/nodes/${ALICE}`)).status, 202);
  assert.equal((await user(target, "PUT", ALICE)).status, 202);
  assert.deepEqual(
    (await holders(db)).map(({ fingerprint, holder_type }) => [fingerprint, holder_type]),
    [[ALICE, 2], [ALICE_KEY, 4]],
  );
  // No third seat for either.
  assert.equal((await user(target, "PUT", "bob@example.com")).status, 410);
  assert.equal((await s.call(target, "PUT", "/v1/nodes/bob")).status, 410);

  // Releasing the user leaves the node's lease alone.
  assertEmpty(await user(target, "DELETE", ALICE), 204);
  assert.equal((await s.call(target, "GET", `/v1/nodes/${ALICE}`)).status, 200);
  assert.equal((await user(target, "GET", ALICE)).status, 404);
  // A node fingerprint shaped like a user's key is refused: it cannot collide.
  assertJson(
    await s.call(target, "PUT", `/v1/nodes/${encodeURIComponent(ALICE_KEY)}`),
    400,
    errorBody("invalid fingerprint"),
  );
});

scenario("/v1/users/ refuses what is not an email with 400 invalid email", async (_t, s) => {
  const user = users(s.call);
  const db = s.db;
  await db.add(1);
  const server = await s.serve([]);
  const target = server;
  const local = "a".repeat(64);
  const long = `${local}@${"d".repeat(63)}.${"e".repeat(63)}.${"f".repeat(63)}`;
  assert.equal(long.length, 256);
  for (
    const email of [
      "alice",
      "alice@",
      "@example.com",
      "a@b@example.com",
      "%20alice@example.com",
      "alice@example.com%20",
      "alice%09@example.com",
      "al%20ice@example.com",
      "alice@exa_mple.com",
      "alice@example..com",
      "alice@-example.com",
      `${"a".repeat(65)}@example.com`,
      long,
      "%ff@example.com",
    ]
  ) {
    assertJson(await user(target, "PUT", email), 400, errorBody("invalid email"));
    assertJson(await user(target, "GET", email), 400, errorBody("invalid email"));
  }
  // At the limit: 254 characters.
  const longest = `${local}@${"d".repeat(63)}.${"e".repeat(63)}.${"f".repeat(61)}`;
  assert.equal(longest.length, 254);
  assert.equal((await user(target, "PUT", longest)).status, 201);
  // Valid (letters beyond ASCII too), but the one seat is taken.
  assertJson(
    await user(target, "PUT", "ünï@bücher.example"),
    410,
    errorBody("no licenses available"),
  );
  assertJson(await s.call(target, "PUT", "/v1/users/"), 404, errorBody("not found"));
  assertJson(await s.call(target, "PUT", "/v1/users/a@b.c/d"), 404, errorBody("not found"));
  assert.equal((await s.call(target, "POST", "/v1/users/a@b.c")).status, 405);
  // No row for a refused request: the holder, and the user known from its denial.
  assert.deepEqual((await holders(db)).map((row) => row.fingerprint), [
    `\u0001user:${longest}`,
    "\u0001user:ünï@bücher.example",
  ]);
});

scenario(
  "expired user leases are reaped by a claim and by the reaper, audited user.culled",
  async (_t, s) => {
    const user = users(s.call);
    const db = s.db;
    const [license] = await db.add(1);
    const licenseId = await rowIdOf(db, "licenses", "guid", license.id);
    const clock = s.clock;

    {
      // A claim that finds no free license reaps the expired user lease first.
      const server = await s.serve(["--ttl", "30s", "--cull-interval", "1h"]);
      const target = server;
      assert.equal((await user(target, "PUT", ALICE)).status, 201);
      clock.advance(30);
      // Her own PUT after expiry ends the old lease as the reaper would, then grants a new one.
      assert.equal((await user(target, "PUT", ALICE)).status, 201);
      const alice = await rowIdOf(db, "nodes", "fingerprint", ALICE_KEY);
      assert.deepEqual((await db.auditTrail()).slice(-5), [
        ["license.lease_expired", "license", licenseId, null],
        ["user.culled", "user", alice, null],
        ["user.activated", "user", alice, null],
        ["license.leased", "license", licenseId, null],
        ["user.heartbeat_ping", "user", alice, null],
      ]);
      clock.advance(30);
      assert.equal((await user(target, "PUT", "bob@example.com")).status, 201);
      // Alice's own next PUT is a new claim, not an extension: the seat is gone.
      assert.equal((await user(target, "PUT", ALICE)).status, 410);
      await server.stop();
    }
    const alice = await rowIdOf(db, "nodes", "fingerprint", ALICE_KEY);
    const bob = await rowIdOf(db, "nodes", "fingerprint", "\u0001user:bob@example.com");
    assert.deepEqual((await db.auditTrail()).slice(-6), [
      ["license.lease_expired", "license", licenseId, null],
      ["user.culled", "user", alice, null],
      ["user.activated", "user", bob, null],
      ["license.leased", "license", licenseId, null],
      ["user.heartbeat_ping", "user", bob, null],
      ["license.denied", "user", alice, null],
    ]);

    // The reaper, with no request at all.
    clock.advance(30);
    const reaper = await s.serve(["--ttl", "30s", "--cull-interval", "100ms"]);
    const deadline = Date.now() + 10_000;
    while ((await holders(db)).find((row) => row.id === bob)!.deactivated_at === null) {
      assert.ok(Date.now() < deadline, "the reaper ends bob's lease");
      await sleep(50);
    }
    assert.deepEqual((await db.auditTrail()).slice(-2), [
      ["license.lease_expired", "license", licenseId, null],
      ["user.culled", "user", bob, null],
    ]);
    assert.equal((await user(reaper, "PUT", ALICE)).status, 201);
  },
);

scenario(
  "a user's 410 is recorded as license.denied against the user, apart from a node's",
  async (_t, s) => {
    const user = users(s.call);
    const db = s.db;
    await db.add(1);
    const server = await s.serve(["--ttl", `${TTL}s`]);
    const target = server;
    assert.equal((await s.call(target, "PUT", "/v1/nodes/n1")).status, 201);
    assertJson(
      await user(target, "PUT", "Carol@Example.com"),
      410,
      errorBody("no licenses available"),
    );
    assert.equal((await user(target, "PUT", "carol@example.com")).status, 410, "within the minute");
    assert.equal((await s.call(target, "PUT", "/v1/nodes/carol@example.com")).status, 410);
    const carolUser = await rowIdOf(db, "nodes", "fingerprint", "\u0001user:carol@example.com");
    const carolNode = await rowIdOf(db, "nodes", "fingerprint", "carol@example.com");
    assert.deepEqual(
      (await db.auditTrail()).filter(([event]) => event === "license.denied"),
      [["license.denied", "user", carolUser, null], ["license.denied", "node", carolNode, null]],
    );
    // Known only from the denial: deactivated, a user row, no lease.
    assert.deepEqual(
      (await holders(db)).filter((row) => row.id === carolUser).map((row) => row.holder_type),
      [4],
    );
    assert.equal((await user(target, "GET", "carol@example.com")).status, 404);
  },
);

scenario(
  "users wait for a seat, need a token, and are counted in the metrics by route and release",
  async (_t, s) => {
    const db = s.db;
    await db.add(1, { pool: "prod" });
    await Deno.writeTextFile(`${db.dir}/tokens`, "t0ken-for-users\n");
    const server = await s.serve(
      ["--ttl", `${TTL}s`, "--auth-token-file", "tokens"],
      { cwd: db.dir, global: ["-vvvv"] },
    );
    const target = server;
    const auth = { Authorization: "Bearer t0ken-for-users", "Relay-Pool": "prod" };
    for (const method of ["PUT", "GET", "DELETE"]) {
      const refused = await s.call(target, method, `/v1/users/${ALICE}`, { "Relay-Pool": "prod" });
      assert.equal(refused.status, 401, method);
    }
    assert.equal((await holders(db)).length, 0);

    assert.equal((await s.call(target, "PUT", "/v1/nodes/n1", auth)).status, 201);
    const waiting = call(target, "PUT", `/v1/users/${ALICE}?wait=30s`, auth);
    for (
      let tries = 0;
      !server.lines.some((l) => l.includes("claim waiting for a seat"));
      tries++
    ) {
      assert.ok(tries < 2000, "the user waits");
      await sleep(5);
    }
    assert.equal((await s.call(target, "DELETE", "/v1/nodes/n1", auth)).status, 204);
    const seated = await waiting;
    assert.equal(seated.status, 201);
    assert.equal(seated.headers.get("Relay-Pool"), "prod");
    assert.equal((await s.call(target, "DELETE", `/v1/users/${ALICE}`, auth)).status, 204);

    const values = samples(
      await (await fetch(`${server.url}/metrics`, { client: server.client })).text(),
    );
    assert.equal(values.get('relay_releases_total{pool="prod",reason="user"}'), 1);
    assert.equal(values.get('relay_releases_total{pool="prod",reason="node"}'), 1);
    assert.equal(
      values.get('relay_request_duration_seconds_count{route="/v1/users/{email}",status="2xx"}'),
      2,
    );
    assert.equal(
      values.get('relay_request_duration_seconds_count{route="/v1/users/{email}",status="4xx"}'),
      3,
    );
    const logged = server.logs().filter((line) => line.msg === "lease released");
    assert.deepEqual(logged.map((line) => line.user ?? line.node), ["n1", ALICE]);
  },
);

scenario(
  "a user's key stored for a node (never by Relay) is a 409, changing nothing",
  async (_t, s) => {
    const user = users(s.call);
    const db = s.db;
    await db.add(1);
    const insert = "INSERT INTO nodes (fingerprint, holder_type, deactivated_at) VALUES (?, 2, 1)";
    if (s.backend === "sqlite") {
      // The test helpers read SQLite read-only: a connection of its own to write.
      const raw = new DatabaseSync(db.database);
      raw.prepare(insert).run(ALICE_KEY);
      raw.close();
    } else {
      await db.rows(insert, ALICE_KEY);
    }
    const before = await db.auditTrail();
    const server = await s.serve([]);
    assertJson(
      await user(server, "PUT", ALICE),
      409,
      errorBody("failed to claim license due to conflict"),
    );
    assert.deepEqual(await db.auditTrail(), before);
    const [free] = await db.rows<{ n: number }>(
      "SELECT count(*) AS n FROM licenses WHERE node_id IS NULL",
    );
    assert.equal(Number(free.n), 1);
  },
);
