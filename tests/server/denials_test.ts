/**
 * Denied claims as audit evidence: every `410` is recorded as
 * `license.denied` against the node, at most once per node and pool a
 * minute on the server's clock, with the responses unchanged and the
 * denied node never shown as a holder.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DenialLimiter } from "../../server/denials.ts";
import { addMinted, auditTrail, mintFiles, query, tempDir } from "../helpers.ts";
import { dbPath, fileArgs, runRelay } from "../cli/support.ts";
import { assertJson, claim, errorBody, release } from "./http_support.ts";
import { FakeClock, serveInProcess } from "./in_process.ts";

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

Deno.test("relay serve records each 410 as license.denied, once per node and pool a minute", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const [license] = await addMinted(dir.path, 1, { pool: "prod" });
  await addMinted(dir.path, 1, { pool: "dev" });
  const prod = query<{ id: number }>(db, "SELECT id FROM pools WHERE name = 'prod'")[0].id;
  const dev = query<{ id: number }>(db, "SELECT id FROM pools WHERE name = 'dev'")[0].id;
  const clock = new FakeClock();
  await using server = await serveInProcess(["--ttl", "1h", "--cull-interval", "1h"], {
    database: db,
    clock,
  });
  const denials = () => auditTrail(db).filter(([event]) => event === "license.denied");
  const nodeOf = (fingerprint: string) =>
    query<{ id: number; deactivated_at: number | null; last_heartbeat_at: number | null }>(
      db,
      "SELECT id, deactivated_at, last_heartbeat_at FROM nodes WHERE fingerprint = ?",
      fingerprint,
    )[0];

  assert.equal((await claim(server, "holder", "prod")).status, 201);
  assert.equal((await claim(server, "holder-dev", "dev")).status, 201);

  await t.step("a retry loop: the same 410 every time, one record", async () => {
    for (let i = 0; i < 5; i++) assertJson(await claim(server, "node-b", "prod"), 410, EXHAUSTED);
    const node = nodeOf("node-b");
    assert.deepEqual(denials(), [["license.denied", "node", node.id, prod]]);
    assert.deepEqual(node, { id: node.id, deactivated_at: clock.unix(), last_heartbeat_at: null });
  });

  await t.step("59 s later still none; a minute later one more", async () => {
    clock.advance(59);
    assertJson(await claim(server, "node-b", "prod"), 410, EXHAUSTED);
    assert.equal(denials().length, 1);
    clock.advance(1);
    assertJson(await claim(server, "node-b", "prod"), 410, EXHAUSTED);
    assert.equal(denials().length, 2);
  });

  await t.step("another pool and another node are counted on their own", async () => {
    assertJson(await claim(server, "node-b", "dev"), 410, EXHAUSTED);
    assertJson(await claim(server, "node-c", "prod"), 410, EXHAUSTED);
    assert.deepEqual(denials().slice(2), [
      ["license.denied", "node", nodeOf("node-b").id, dev],
      ["license.denied", "node", nodeOf("node-c").id, prod],
    ]);
  });

  await t.step("a denied node is no holder: ls, stat and DELETE as before", async () => {
    const ls = await runRelay(["ls", "--json", "--pool", "prod"], { cwd: dir.path });
    assert.deepEqual(
      JSON.parse(ls.stdout).map((row: Record<string, unknown>) => [row.id, row.node_fingerprint]),
      [[license.id, "holder"]],
    );
    const stat = await runRelay(["stat", "--json", "--license", license.id], { cwd: dir.path });
    assert.equal(JSON.parse(stat.stdout).node_fingerprint, "holder");
    assertJson(await release(server, "node-b", "prod"), 404, errorBody("claim not found"));
  });

  await t.step("relay leases counts the pool's denials of the last day", async () => {
    const leases = await runRelay(["leases", "--json"], { cwd: dir.path, now: clock.now() });
    const pools = JSON.parse(leases.stdout).pools.map((pool: Record<string, unknown>) => [
      pool.pool,
      pool.denials_24h,
    ]);
    assert.deepEqual(pools, [["prod", 3], ["dev", 1]]);
    const plain = await runRelay(["leases", "--plain", "--pool", "prod"], {
      cwd: dir.path,
      // A day and a second after the first denial, which no longer counts.
      now: new Date((clock.unix() - 60 + 86_401) * 1000),
    });
    assert.match(plain.stdout, /^pool prod: .*, 2 denials in the last 24h\n/);
  });

  await t.step("once a license is free the denied node gets it, on the same node row", async () => {
    const id = nodeOf("node-b").id;
    assert.equal((await release(server, "holder", "prod")).status, 204);
    assert.equal((await claim(server, "node-b", "prod")).status, 201);
    assert.deepEqual(nodeOf("node-b"), {
      id,
      deactivated_at: null,
      last_heartbeat_at: clock.unix(),
    });
    assert.deepEqual(auditTrail(db).slice(-3), [
      ["node.activated", "node", id, prod],
      [
        "license.leased",
        "license",
        query<{ id: number }>(
          db,
          "SELECT id FROM licenses WHERE guid = ?",
          license.id,
        )[0].id,
        prod,
      ],
      ["node.heartbeat_ping", "node", id, prod],
    ]);
  });

  assert.equal((await server.stop()).code, 0);
});

Deno.test("a 410 for expired files only is a denial too; --no-audit records none and stores no node", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const clock = new FakeClock();
  const { publicKey, files } = await mintFiles(dir.path, 1, { issued: clock.now(), ttl: 3600 });
  const added = await runRelay(["add", ...fileArgs(files), "--public-key", publicKey], {
    cwd: dir.path,
    now: clock.now(),
  });
  assert.equal(added.code, 0, added.stderr);
  clock.advance(7200);

  await t.step("expired only", async () => {
    await using server = await serveInProcess([], { database: db, clock });
    assertJson(
      await claim(server, "node-x"),
      410,
      errorBody("no valid licenses available: every free license has expired"),
    );
    const node = query<{ id: number }>(db, "SELECT id FROM nodes WHERE fingerprint = 'node-x'");
    assert.deepEqual(auditTrail(db).slice(-1), [["license.denied", "node", node[0].id, null]]);
    await server.stop();
  });

  await t.step("--no-audit", async () => {
    await using server = await serveInProcess([], { database: db, clock, global: ["--no-audit"] });
    const before = auditTrail(db).length;
    clock.advance(3600);
    assertJson(
      await claim(server, "node-y"),
      410,
      errorBody("no valid licenses available: every free license has expired"),
    );
    assert.equal(auditTrail(db).length, before);
    assert.deepEqual(query(db, "SELECT id FROM nodes WHERE fingerprint = 'node-y'"), []);
    await server.stop();
  });
});
