/**
 * `PUT …?wait=DURATION`: a claim that finds no seat waits for one instead of
 * a 410, first come first served, until a seat is freed (a release, an
 * expired lease, another server's release on the same database) or its time
 * is up; a disconnected waiter gives up its place; the number of waiters is
 * capped; shutting down answers every waiter at once. Real servers
 * in-process, on clocks the test moves; each scenario runs on SQLite and on
 * PostgreSQL (rows compared between the engines, see scenario_support.ts; a
 * waiter's reply races the reply of the request that freed its seat, so
 * those are not compared).
 *
 * @module
 */

import assert from "node:assert/strict";
import { waitUntil } from "../helpers.ts";
import { assertJson, call, errorBody, type Reply, type Target } from "./http_support.ts";
import type { InProcessServer } from "./in_process.ts";
import { type Scenario, scenario } from "./scenario_support.ts";

const TTL = 60;

/** Resolves once the server has logged `count` claims waiting in all. */
function waiting(server: InProcessServer, count: number): Promise<void> {
  const logged = () =>
    server.lines.filter((line) => line.includes('"claim waiting for a seat"')).length;
  return waitUntil(() => logged() >= count, `${count} claims waiting`);
}

async function withServer(
  s: Scenario,
  licenses: number,
  args: string[],
  fn: (server: InProcessServer, target: Target) => Promise<void>,
): Promise<void> {
  await s.db.add(licenses);
  const server = await s.serve(["--ttl", `${TTL}s`, ...args], { global: ["-vvvv"] });
  await fn(server, server);
}

scenario("waiters get freed seats first come, first served", async (_t, s) => {
  await withServer(s, 1, [], async (server, target) => {
    assert.equal((await call(target, "PUT", "/v1/nodes/a")).status, 201);
    const b = call(target, "PUT", "/v1/nodes/b?wait=30s");
    await waiting(server, 1);
    const c = call(target, "PUT", "/v1/nodes/c?wait=30");
    await waiting(server, 2);
    assert.equal((await call(target, "DELETE", "/v1/nodes/a")).status, 204);
    const first = await b;
    assert.equal(first.status, 201);
    assert.ok(JSON.parse(first.body).license_key);
    assert.equal((await call(target, "DELETE", "/v1/nodes/b")).status, 204);
    assert.equal((await c).status, 201);
  });
});

scenario("a waiter gets the 410 when its time is up, by the server's clock", async (_t, s) => {
  await withServer(s, 1, [], async (server, target) => {
    const t0 = server.clock.unix();
    assert.equal((await call(target, "PUT", "/v1/nodes/a")).status, 201);
    const b = call(target, "PUT", "/v1/nodes/b?wait=10s");
    await waiting(server, 1);
    server.clock.advance(10);
    const reply = await b;
    assert.equal(reply.status, 410);
    assert.equal(reply.body, errorBody("no licenses available"));
    // Answered when the time was up, not when it was asked.
    assert.equal(reply.headers.get("Relay-Clock"), String(t0 + 10));
    assert.equal(reply.headers.get("Retry-After"), String(TTL - 10));
  });
});

scenario("a waiter takes a lease that runs out while it waits", async (_t, s) => {
  await withServer(s, 1, [], async (server, target) => {
    const t0 = server.clock.unix();
    assert.equal((await call(target, "PUT", "/v1/nodes/a")).status, 201);
    const b = call(target, "PUT", "/v1/nodes/b?wait=5m");
    await waiting(server, 1);
    server.clock.advanceTo(t0 + TTL);
    const reply = await b;
    assert.equal(reply.status, 201);
    // Its lease starts when it got the seat.
    assert.equal(JSON.parse(reply.body).expires_at, t0 + 2 * TTL);
    assert.equal(reply.headers.get("Relay-Clock"), String(t0 + TTL));
    // a's heartbeat finds its lease gone.
    assert.equal((await call(target, "PUT", "/v1/nodes/a")).status, 410);
  });
});

scenario("?wait= is checked: malformed or too long is a 400, 0 answers at once", async (_t, s) => {
  await withServer(s, 1, ["--max-wait", "2m"], async (_server, target) => {
    for (const wait of ["abc", "-5", "1x", "121", "3m", "10s&wait=20s"]) {
      const reply = await s.call(target, "PUT", `/v1/nodes/a?wait=${wait}`);
      assertJson(reply, 400, errorBody("invalid wait: use seconds or a duration of at most 120s"));
    }
    assert.equal((await s.call(target, "PUT", "/v1/nodes/a?wait=2m")).status, 201);
    // A heartbeat with a wait is answered at once.
    assert.equal((await s.call(target, "PUT", "/v1/nodes/a?wait=120")).status, 202);
    assert.equal((await s.call(target, "PUT", "/v1/nodes/b?wait=0")).status, 410);
    assert.equal((await s.call(target, "PUT", "/v1/nodes/b?other=1")).status, 410);
  });
});

scenario("beyond --max-waiters a claim gets its 410 at once", async (_t, s) => {
  await withServer(s, 1, ["--max-waiters", "1"], async (server, target) => {
    assert.equal((await call(target, "PUT", "/v1/nodes/a")).status, 201);
    const b = call(target, "PUT", "/v1/nodes/b?wait=30s");
    await waiting(server, 1);
    assert.equal((await call(target, "PUT", "/v1/nodes/c?wait=30s")).status, 410);
    assert.equal((await call(target, "DELETE", "/v1/nodes/a")).status, 204);
    assert.equal((await b).status, 201);
  });
});

scenario("a waiter that disconnects gives up its place", async (_t, s) => {
  await withServer(s, 1, [], async (server, target) => {
    assert.equal((await call(target, "PUT", "/v1/nodes/a")).status, 201);
    const gone = new AbortController();
    const b = fetch(`${server.url}/v1/nodes/b?wait=30s`, {
      method: "PUT",
      signal: gone.signal,
      client: server.client,
    }).catch((error) => error);
    await waiting(server, 1);
    const c = call(target, "PUT", "/v1/nodes/c?wait=30s");
    await waiting(server, 2);
    gone.abort();
    assert.ok((await b) instanceof Error);
    assert.equal((await call(target, "DELETE", "/v1/nodes/a")).status, 204);
    // The seat goes to c, not to the waiter that left.
    assert.equal((await c).status, 201);
    assert.equal((await call(target, "GET", "/v1/nodes/b")).status, 404);
  });
});

scenario("shutting down answers every waiter at once", async (_t, s) => {
  await withServer(s, 1, [], async (server, target) => {
    assert.equal((await call(target, "PUT", "/v1/nodes/a")).status, 201);
    const b = call(target, "PUT", "/v1/nodes/b?wait=5m");
    await waiting(server, 1);
    const stopped = server.stop();
    const reply: Reply = await b;
    assert.equal(reply.status, 410);
    assert.equal((await stopped).code, 0);
  });
});

// On SQLite two servers on one file; on PostgreSQL two replicas. The waiter
// learns of the other server's release by polling the database.
scenario(
  "a waiter on one server gets a seat another server frees on the same database",
  async (_t, s) => {
    await s.db.add(1);
    const one = await s.serve([]);
    const two = await s.serve([], { global: ["-vvvv"] });
    assert.equal((await call(one, "PUT", "/v1/nodes/a")).status, 201);
    const b = call(two, "PUT", "/v1/nodes/b?wait=30s");
    await waiting(two, 1);
    assert.equal((await call(one, "DELETE", "/v1/nodes/a")).status, 204);
    assert.equal((await b).status, 201);
  },
);
