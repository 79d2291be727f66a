/**
 * Lease expiry against the real server, with the minimum `--ttl 30s`. Two
 * servers run in-process on one clock that the test moves, so no test waits
 * for a lease to expire: one whose reaper never runs (`--cull-interval 1h`:
 * expired leases are handled by the requests that meet them) and one whose
 * reaper runs every 100 ms (leases reaped with no request at all). The
 * scenario runs once per storage engine, SQLite and PostgreSQL, and the
 * engines' replies and rows are compared (see scenario_support.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { MintedFile } from "../helpers.ts";
import {
  assertEmpty,
  assertJson,
  createdBody,
  errorBody,
  extendedBody,
  logLines,
  relayClock,
  sleep,
} from "./http_support.ts";
import { scenario, type ScenarioDatabase } from "./scenario_support.ts";

const TTL = 30;

/** The reaping server's cull interval, in ms: the shortest allowed. */
const CULL_MS = 100;

const nodeId = async (db: ScenarioDatabase, fp: string) => (await db.node(fp)).id;
const licenseId = async (db: ScenarioDatabase, file: MintedFile) => (await db.license(file.key)).id;

/** A license's lease state. */
const lease = (db: ScenarioDatabase, file: MintedFile) => db.license(file.key);

const deactivatedAt = async (db: ScenarioDatabase, fp: string) =>
  (await db.node(fp)).deactivated_at;

scenario("expired leases, with and without the reaper", async (t, s) => {
  // Server 1: the reaper never runs within the test.
  const db1 = s.db;
  const [ab] = await db1.add(1, { pool: "ab" });
  const [c] = await db1.add(1, { pool: "c" });
  const [e] = await db1.add(1, { pool: "e" });
  const [f] = await db1.add(1, { pool: "f" });
  // Server 2: the reaper runs every 100 ms; a database of its own.
  const db2 = await s.database();
  const [r] = await db2.add(1);

  // One clock for both servers, as the real one would be.
  const clock = s.clock;
  const global = ["-vvvv"];
  const lazy = await s.serve(["--ttl", `${TTL}s`, "--cull-interval", "1h"], { global, db: db1 });
  const reaping = await s.serve(
    ["--ttl", `${TTL}s`, "--cull-interval", `${CULL_MS}ms`],
    { global, db: db2 },
  );
  assert.equal(lazy.startup.ttl, "30s");
  assert.equal(reaping.startup.ttl, "30s");

  const before2 = (await db2.auditTrail()).length;
  let lastClaim = 0;
  let reapedClaim = 0;

  await t.step("claims on both servers", async () => {
    for (
      const [fp, pool, file] of [["A", "ab", ab], ["C", "c", c], ["E", "e", e], [
        "F",
        "f",
        f,
      ]] as const
    ) {
      const reply = await s.claim(lazy, fp, pool);
      const clock = relayClock(reply);
      assertJson(reply, 201, createdBody(file.certificate, file.key, clock, TTL));
      lastClaim = Math.max(lastClaim, clock);
    }
    const reply = await s.claim(reaping, "R");
    reapedClaim = relayClock(reply);
    assertJson(reply, 201, createdBody(r.certificate, r.key, reapedClaim, TTL));
    lastClaim = Math.max(lastClaim, reapedClaim);
  });

  let heartbeatClock = 0;
  await t.step("half-way: a heartbeat extends; the reaper leaves live leases alone", async () => {
    clock.advanceTo(lastClaim + 15);
    const reply = await s.claim(lazy, "E", "e");
    heartbeatClock = relayClock(reply);
    assertJson(reply, 202, extendedBody(heartbeatClock, TTL));
    // The reaper reads the moved clock on its next runs: let a few of them pass.
    await sleep(3 * CULL_MS);
    assert.equal((await lease(db2, r)).node_id, await nodeId(db2, "R"));
    assert.equal(await deactivatedAt(db2, "R"), null);
  });

  await t.step("move the clock until the first leases have expired", () => {
    // Expired when the server's clock reaches last heartbeat + ttl; a second more for margin.
    clock.advanceTo(lastClaim + TTL + 1);
    assert.ok(clock.unix() >= lastClaim + TTL + 1);
  });

  await t.step("the reaper alone released the idle lease on server 2", async () => {
    // No request to server 2 since the claim; its reaper runs every 100 ms of real time.
    const deadline = Date.now() + 8_000;
    while ((await lease(db2, r)).node_id !== null && Date.now() < deadline) await sleep(CULL_MS);
    const row = await lease(db2, r);
    assert.equal(row.node_id, null, "reaped");
    assert.ok(row.last_released_at! >= reapedClaim + TTL, "not before the lease expired");
    const culledAt = await deactivatedAt(db2, "R");
    assert.ok(culledAt !== null && culledAt >= reapedClaim + TTL && culledAt <= clock.unix());
    const node = await nodeId(db2, "R");
    const license = await licenseId(db2, r);
    assert.deepEqual((await db2.auditTrail()).slice(before2), [
      ["node.activated", "node", node, null],
      ["license.leased", "license", license, null],
      ["node.heartbeat_ping", "node", node, null],
      ["license.lease_expired", "license", license, null],
      ["node.culled", "node", node, null],
    ]);
    assert.equal(logLines(reaping.lines, "request").length, 1, "only the claim reached it");
    assert.deepEqual(
      logLines(reaping.lines, "reaped expired leases").map((line) => line.count),
      [1],
    );
  });

  await t.step("server 1's reaper has not run: the expired leases are still recorded", async () => {
    assert.equal((await lease(db1, ab)).node_id, await nodeId(db1, "A"));
    assert.equal((await lease(db1, c)).node_id, await nodeId(db1, "C"));
    assert.equal((await lease(db1, f)).node_id, await nodeId(db1, "F"));
    assert.deepEqual(logLines(lazy.lines, "reaped expired leases"), []);
  });

  await t.step("a node whose lease expired gets a new lease (201), not an extension", async () => {
    const before = (await db1.auditTrail()).length;
    const node = await nodeId(db1, "C");
    const reply = await s.claim(lazy, "C", "c");
    assertJson(reply, 201, createdBody(c.certificate, c.key, relayClock(reply), TTL));
    assert.equal(await nodeId(db1, "C"), node, "the same nodes row, reactivated");
    assert.equal(await deactivatedAt(db1, "C"), null);
    const row = await lease(db1, c);
    assert.equal(row.node_id, node);
    assert.equal(row.claims, 2, "a new lease counts as a claim");
    const license = await licenseId(db1, c);
    const pool = await db1.poolId("c");
    assert.deepEqual((await db1.auditTrail()).slice(before), [
      ["license.lease_expired", "license", license, pool],
      ["node.culled", "node", node, pool],
      ["node.activated", "node", node, pool],
      ["license.leased", "license", license, pool],
      ["node.heartbeat_ping", "node", node, pool],
    ]);
  });

  await t.step("releasing an expired lease: 404, recorded as expired", async () => {
    const before = (await db1.auditTrail()).length;
    assertJson(await s.release(lazy, "F", "f"), 404, errorBody("claim not found"));
    assert.equal((await lease(db1, f)).node_id, null);
    assert.ok(await deactivatedAt(db1, "F") !== null);
    const pool = await db1.poolId("f");
    assert.deepEqual((await db1.auditTrail()).slice(before), [
      ["license.lease_expired", "license", await licenseId(db1, f), pool],
      ["node.culled", "node", await nodeId(db1, "F"), pool],
    ]);
  });

  await t.step("a heartbeat within the ttl keeps the lease: 202", async () => {
    assert.ok(clock.unix() < heartbeatClock + TTL, "still within the ttl of the heartbeat");
    const reply = await s.claim(lazy, "E", "e");
    assertJson(reply, 202, extendedBody(relayClock(reply), TTL));
    assert.equal((await lease(db1, e)).claims, 1);
  });

  await t.step("another node gets an expired, unreaped license (201, not 410)", async () => {
    const before = (await db1.auditTrail()).length;
    const a = await nodeId(db1, "A");
    const reply = await s.claim(lazy, "B", "ab");
    assertJson(reply, 201, createdBody(ab.certificate, ab.key, relayClock(reply), TTL));
    const b = await nodeId(db1, "B");
    assert.equal((await lease(db1, ab)).node_id, b);
    assert.ok(await deactivatedAt(db1, "A") !== null, "A was culled");
    const license = await licenseId(db1, ab);
    const pool = await db1.poolId("ab");
    assert.deepEqual((await db1.auditTrail()).slice(before), [
      ["license.lease_expired", "license", license, pool],
      ["node.culled", "node", a, pool],
      ["node.activated", "node", b, pool],
      ["license.leased", "license", license, pool],
      ["node.heartbeat_ping", "node", b, pool],
    ]);
  });

  await t.step(
    "the expired node then finds its license taken: 410, and 404 on release",
    async () => {
      const before = (await db1.auditTrail()).length;
      assertJson(await s.claim(lazy, "A", "ab"), 410, errorBody("no licenses available"));
      assertJson(await s.release(lazy, "A", "ab"), 404, errorBody("claim not found"));
      assert.equal((await lease(db1, ab)).node_id, await nodeId(db1, "B"));
      assert.deepEqual(
        (await db1.auditTrail()).slice(before),
        [["license.denied", "node", await nodeId(db1, "A"), await db1.poolId("ab")]],
        "only the denial",
      );
    },
  );

  await t.step("both servers stop cleanly", async () => {
    assertEmpty(await s.release(lazy, "B", "ab"), 204);
    for (const server of [lazy, reaping]) {
      const { code, stderr } = await server.stop();
      assert.equal(code, 0);
      assert.equal(stderr, "");
    }
  });
});
