/**
 * Lease expiry against the real server, with the minimum `--ttl 30s`. Two
 * servers run in-process on one clock that the test moves, so no test waits
 * for a lease to expire: one whose reaper never runs (`--cull-interval 1h`:
 * expired leases are handled by the requests that meet them) and one whose
 * reaper runs every 100 ms (leases reaped with no request at all).
 *
 * @module
 */

import assert from "node:assert/strict";
import { addMinted, auditTrail, type MintedFile, query, tempDir } from "../helpers.ts";
import {
  assertEmpty,
  assertJson,
  claim,
  createdBody,
  dbPath,
  errorBody,
  extendedBody,
  logLines,
  relayClock,
  release,
  sleep,
} from "./http_support.ts";
import { FakeClock, serveInProcess } from "./in_process.ts";

const TTL = 30;

/** The reaping server's cull interval, in ms: the shortest allowed. */
const CULL_MS = 100;

function id(db: string, sql: string, param: string): number {
  const rows = query<{ id: number }>(db, sql, param);
  assert.equal(rows.length, 1, `${sql} ${param}`);
  return rows[0].id;
}

const nodeId = (db: string, fp: string) => id(db, "SELECT id FROM nodes WHERE fingerprint = ?", fp);
const licenseId = (db: string, file: MintedFile) =>
  id(db, "SELECT id FROM licenses WHERE key = ?", file.key);
const poolId = (db: string, name: string) => id(db, "SELECT id FROM pools WHERE name = ?", name);

interface Lease {
  node_id: number | null;
  claims: number;
  last_released_at: number | null;
}

function lease(db: string, file: MintedFile): Lease {
  return query<Lease>(
    db,
    "SELECT node_id, claims, last_released_at FROM licenses WHERE key = ?",
    file.key,
  )[0];
}

function deactivatedAt(db: string, fp: string): number | null {
  return query<{ deactivated_at: number | null }>(
    db,
    "SELECT deactivated_at FROM nodes WHERE fingerprint = ?",
    fp,
  )[0].deactivated_at;
}

Deno.test("expired leases, with and without the reaper", async (t) => {
  // Server 1: the reaper never runs within the test.
  await using dir1 = await tempDir();
  const db1 = dbPath(dir1.path);
  const [ab] = await addMinted(dir1.path, 1, { pool: "ab" });
  const [c] = await addMinted(dir1.path, 1, { pool: "c" });
  const [e] = await addMinted(dir1.path, 1, { pool: "e" });
  const [f] = await addMinted(dir1.path, 1, { pool: "f" });
  // Server 2: the reaper runs every second.
  await using dir2 = await tempDir();
  const db2 = dbPath(dir2.path);
  const [r] = await addMinted(dir2.path, 1);

  // One clock for both servers, as the real one would be.
  const clock = new FakeClock();
  const common = { global: ["-vvvv"], clock };
  await using lazy = await serveInProcess(["--ttl", `${TTL}s`, "--cull-interval", "1h"], {
    ...common,
    database: db1,
  });
  await using reaping = await serveInProcess(
    ["--ttl", `${TTL}s`, "--cull-interval", `${CULL_MS}ms`],
    { ...common, database: db2 },
  );
  assert.equal(lazy.startup.ttl, "30s");
  assert.equal(reaping.startup.ttl, "30s");

  const before2 = auditTrail(db2).length;
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
      const reply = await claim(lazy, fp, pool);
      const clock = relayClock(reply);
      assertJson(reply, 201, createdBody(file.certificate, file.key, clock, TTL));
      lastClaim = Math.max(lastClaim, clock);
    }
    const reply = await claim(reaping, "R");
    reapedClaim = relayClock(reply);
    assertJson(reply, 201, createdBody(r.certificate, r.key, reapedClaim, TTL));
    lastClaim = Math.max(lastClaim, reapedClaim);
  });

  let heartbeatClock = 0;
  await t.step("half-way: a heartbeat extends; the reaper leaves live leases alone", async () => {
    clock.advanceTo(lastClaim + 15);
    const reply = await claim(lazy, "E", "e");
    heartbeatClock = relayClock(reply);
    assertJson(reply, 202, extendedBody(heartbeatClock, TTL));
    // The reaper reads the moved clock on its next runs: let a few of them pass.
    await sleep(3 * CULL_MS);
    assert.equal(lease(db2, r).node_id, nodeId(db2, "R"));
    assert.equal(deactivatedAt(db2, "R"), null);
  });

  await t.step("move the clock until the first leases have expired", () => {
    // Expired when the server's clock reaches last heartbeat + ttl; a second more for margin.
    clock.advanceTo(lastClaim + TTL + 1);
    assert.ok(clock.unix() >= lastClaim + TTL + 1);
  });

  await t.step("the reaper alone released the idle lease on server 2", async () => {
    // No request to server 2 since the claim; its reaper runs every 100 ms of real time.
    const deadline = Date.now() + 8_000;
    while (lease(db2, r).node_id !== null && Date.now() < deadline) await sleep(CULL_MS);
    const row = lease(db2, r);
    assert.equal(row.node_id, null, "reaped");
    assert.ok(row.last_released_at! >= reapedClaim + TTL, "not before the lease expired");
    const culledAt = deactivatedAt(db2, "R");
    assert.ok(culledAt !== null && culledAt >= reapedClaim + TTL && culledAt <= clock.unix());
    const node = nodeId(db2, "R");
    const license = licenseId(db2, r);
    assert.deepEqual(auditTrail(db2).slice(before2), [
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

  await t.step("server 1's reaper has not run: the expired leases are still recorded", () => {
    assert.equal(lease(db1, ab).node_id, nodeId(db1, "A"));
    assert.equal(lease(db1, c).node_id, nodeId(db1, "C"));
    assert.equal(lease(db1, f).node_id, nodeId(db1, "F"));
    assert.deepEqual(logLines(lazy.lines, "reaped expired leases"), []);
  });

  await t.step("a node whose lease expired gets a new lease (201), not an extension", async () => {
    const before = auditTrail(db1).length;
    const node = nodeId(db1, "C");
    const reply = await claim(lazy, "C", "c");
    assertJson(reply, 201, createdBody(c.certificate, c.key, relayClock(reply), TTL));
    assert.equal(nodeId(db1, "C"), node, "the same nodes row, reactivated");
    assert.equal(deactivatedAt(db1, "C"), null);
    const row = lease(db1, c);
    assert.equal(row.node_id, node);
    assert.equal(row.claims, 2, "a new lease counts as a claim");
    const license = licenseId(db1, c);
    const pool = poolId(db1, "c");
    assert.deepEqual(auditTrail(db1).slice(before), [
      ["license.lease_expired", "license", license, pool],
      ["node.culled", "node", node, pool],
      ["node.activated", "node", node, pool],
      ["license.leased", "license", license, pool],
      ["node.heartbeat_ping", "node", node, pool],
    ]);
  });

  await t.step("releasing an expired lease: 404, recorded as expired", async () => {
    const before = auditTrail(db1).length;
    assertJson(await release(lazy, "F", "f"), 404, errorBody("claim not found"));
    assert.equal(lease(db1, f).node_id, null);
    assert.ok(deactivatedAt(db1, "F") !== null);
    const pool = poolId(db1, "f");
    assert.deepEqual(auditTrail(db1).slice(before), [
      ["license.lease_expired", "license", licenseId(db1, f), pool],
      ["node.culled", "node", nodeId(db1, "F"), pool],
    ]);
  });

  await t.step("a heartbeat within the ttl keeps the lease: 202", async () => {
    assert.ok(clock.unix() < heartbeatClock + TTL, "still within the ttl of the heartbeat");
    const reply = await claim(lazy, "E", "e");
    assertJson(reply, 202, extendedBody(relayClock(reply), TTL));
    assert.equal(lease(db1, e).claims, 1);
  });

  await t.step("another node gets an expired, unreaped license (201, not 410)", async () => {
    const before = auditTrail(db1).length;
    const a = nodeId(db1, "A");
    const reply = await claim(lazy, "B", "ab");
    assertJson(reply, 201, createdBody(ab.certificate, ab.key, relayClock(reply), TTL));
    const b = nodeId(db1, "B");
    assert.equal(lease(db1, ab).node_id, b);
    assert.ok(deactivatedAt(db1, "A") !== null, "A was culled");
    const license = licenseId(db1, ab);
    const pool = poolId(db1, "ab");
    assert.deepEqual(auditTrail(db1).slice(before), [
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
      const before = auditTrail(db1).length;
      assertJson(await claim(lazy, "A", "ab"), 410, errorBody("no licenses available"));
      assertJson(await release(lazy, "A", "ab"), 404, errorBody("claim not found"));
      assert.equal(lease(db1, ab).node_id, nodeId(db1, "B"));
      assert.deepEqual(
        auditTrail(db1).slice(before),
        [["license.denied", "node", nodeId(db1, "A"), poolId(db1, "ab")]],
        "only the denial",
      );
    },
  );

  await t.step("both servers stop cleanly", async () => {
    assertEmpty(await release(lazy, "B", "ab"), 204);
    for (const server of [lazy, reaping]) {
      const { code, stderr } = await server.stop();
      assert.equal(code, 0);
      assert.equal(stderr, "");
    }
  });
});
