/**
 * Denied claims as audit evidence: every `410` is recorded as
 * `license.denied` against the node, at most once per node and pool a
 * minute on the server's clock, with the responses unchanged and the
 * denied node never shown as a holder. The server scenarios run on SQLite
 * and on PostgreSQL, and the engines' replies, output and rows are compared
 * (see scenario_support.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { DenialLimiter } from "../../server/denials.ts";
import { assertJson, errorBody } from "./http_support.ts";
import { scenario } from "./scenario_support.ts";

const EXHAUSTED = errorBody("no licenses available");

Deno.test("DenialLimiter admits a key once per window, each key on its own", () => {
  const limiter = new DenialLimiter({ windowSeconds: 60 });
  const t = 1_800_000_000;
  assert.equal(limiter.admit("a", t), true);
  assert.equal(limiter.admit("a", t), false, "the same second");
  assert.equal(limiter.admit("b", t + 1), true, "another key");
  assert.equal(limiter.admit("a", t + 59), false, "59 s later");
  assert.equal(limiter.admit("a", t + 60), true, "a minute later");
  assert.equal(limiter.admit("a", t + 61), false, "the window starts again from there");
  assert.equal(limiter.admit("b", t + 61), true);
});

Deno.test("DenialLimiter forgets keys once their window passed, and keeps at most maxKeys", () => {
  const limiter = new DenialLimiter({ windowSeconds: 60, maxKeys: 100 });
  const t = 1_800_000_000;
  for (let i = 0; i < 50; i++) assert.equal(limiter.admit(`node-${i}`, t), true);
  assert.equal(limiter.size, 50);
  assert.equal(limiter.admit("late", t + 30), true);
  assert.equal(limiter.admit("later", t + 60), true);
  assert.equal(limiter.size, 2, "the 50 of the first second are forgotten at t+60");

  for (let i = 0; i < 250; i++) limiter.admit(`flood-${i}`, t + 61);
  assert.equal(limiter.size, 100, "bounded");
  assert.equal(limiter.admit("flood-249", t + 61), false, "the newest keys are kept");
  assert.equal(limiter.admit("flood-0", t + 61), true, "the oldest was dropped to make room");

  // A clock set back neither forgets nor readmits early.
  assert.equal(limiter.admit("flood-249", t + 10), false);
});

scenario(
  "relay serve records each 410 as license.denied, once per node and pool a minute",
  async (t, s) => {
    const db = s.db;
    const [license] = await db.add(1, { pool: "prod" });
    await db.add(1, { pool: "dev" });
    const prod = await db.poolId("prod");
    const dev = await db.poolId("dev");
    const clock = s.clock;
    const server = await s.serve(["--ttl", "1h", "--cull-interval", "1h"]);
    const denials = async () =>
      (await db.auditTrail()).filter(([event]) => event === "license.denied");
    const nodeOf = async (fingerprint: string) => {
      const { id, deactivated_at, last_heartbeat_at } = await db.node(fingerprint);
      return { id, deactivated_at, last_heartbeat_at };
    };

    assert.equal((await s.claim(server, "holder", "prod")).status, 201);
    assert.equal((await s.claim(server, "holder-dev", "dev")).status, 201);

    await t.step("a retry loop: the same 410 every time, one record", async () => {
      for (let i = 0; i < 5; i++) {
        assertJson(await s.claim(server, "node-b", "prod"), 410, EXHAUSTED);
      }
      const node = await nodeOf("node-b");
      assert.deepEqual(await denials(), [["license.denied", "node", node.id, prod]]);
      assert.deepEqual(node, {
        id: node.id,
        deactivated_at: clock.unix(),
        last_heartbeat_at: null,
      });
    });

    await t.step("59 s later still none; a minute later one more", async () => {
      clock.advance(59);
      assertJson(await s.claim(server, "node-b", "prod"), 410, EXHAUSTED);
      assert.equal((await denials()).length, 1);
      clock.advance(1);
      assertJson(await s.claim(server, "node-b", "prod"), 410, EXHAUSTED);
      assert.equal((await denials()).length, 2);
    });

    await t.step("another pool and another node are counted on their own", async () => {
      assertJson(await s.claim(server, "node-b", "dev"), 410, EXHAUSTED);
      assertJson(await s.claim(server, "node-c", "prod"), 410, EXHAUSTED);
      assert.deepEqual((await denials()).slice(2), [
        ["license.denied", "node", (await nodeOf("node-b")).id, dev],
        ["license.denied", "node", (await nodeOf("node-c")).id, prod],
      ]);
    });

    await t.step("a denied node is no holder: ls, stat and DELETE as before", async () => {
      const now = clock.now();
      const ls = await s.relay(["ls", "--json", "--pool", "prod"], { now });
      assert.deepEqual(
        JSON.parse(ls.stdout).map((row: Record<string, unknown>) => [row.id, row.node_fingerprint]),
        [[license.id, "holder"]],
      );
      const stat = await s.relay(["stat", "--json", "--license", license.id], { now });
      assert.equal(JSON.parse(stat.stdout).node_fingerprint, "holder");
      assertJson(await s.release(server, "node-b", "prod"), 404, errorBody("claim not found"));
    });

    await t.step("relay leases counts the pool's denials of the last day", async () => {
      const leases = await s.relay(["leases", "--json"], { now: clock.now() });
      const pools = JSON.parse(leases.stdout).pools.map((pool: Record<string, unknown>) => [
        pool.pool,
        pool.denials_24h,
      ]);
      assert.deepEqual(pools, [["prod", 3], ["dev", 1]]);
      const plain = await s.relay(["leases", "--plain", "--pool", "prod"], {
        // A day and a second after the first denial, which no longer counts.
        now: new Date((clock.unix() - 60 + 86_401) * 1000),
      });
      assert.match(plain.stdout, /^pool prod: .*, 2 denials in the last 24h\n/);
    });

    await t.step(
      "once a license is free the denied node gets it, on the same node row",
      async () => {
        const id = (await nodeOf("node-b")).id;
        assert.equal((await s.release(server, "holder", "prod")).status, 204);
        assert.equal((await s.claim(server, "node-b", "prod")).status, 201);
        assert.deepEqual(await nodeOf("node-b"), {
          id,
          deactivated_at: null,
          last_heartbeat_at: clock.unix(),
        });
        assert.deepEqual((await db.auditTrail()).slice(-3), [
          ["node.activated", "node", id, prod],
          ["license.leased", "license", (await db.license(license.key)).id, prod],
          ["node.heartbeat_ping", "node", id, prod],
        ]);
      },
    );

    assert.equal((await server.stop()).code, 0);
  },
);

scenario(
  "a 410 for expired files only is a denial too; --no-audit records none and stores no node",
  async (t, s) => {
    const db = s.db;
    const clock = s.clock;
    await db.add(1, { mint: { issued: clock.now(), ttl: 3600 }, at: clock.now() });
    clock.advance(7200);
    const expiredOnly = errorBody("no valid licenses available: every free license has expired");

    await t.step("expired only", async () => {
      const server = await s.serve([]);
      assertJson(await s.claim(server, "node-x"), 410, expiredOnly);
      const node = await db.node("node-x");
      assert.deepEqual((await db.auditTrail()).slice(-1), [[
        "license.denied",
        "node",
        node.id,
        null,
      ]]);
      await server.stop();
    });

    await t.step("--no-audit", async () => {
      const server = await s.serve([], { global: ["--no-audit"] });
      const before = (await db.auditTrail()).length;
      clock.advance(3600);
      assertJson(await s.claim(server, "node-y"), 410, expiredOnly);
      assert.equal((await db.auditTrail()).length, before);
      assert.deepEqual(await db.rows("SELECT id FROM nodes WHERE fingerprint = 'node-y'"), []);
      await server.stop();
    });
  },
);
