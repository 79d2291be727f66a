/**
 * User seats as the CLI and the status page show them: `ls`, `stat`,
 * `leases`, `audit` name a user as `user alice@example.com` (JSON: `user`,
 * the node field null), `release --user` and `audit --user` take the email
 * in any case. A real server in-process leases the seats.
 *
 * @module
 */

import assert from "node:assert/strict";
import { addMinted, auditTrail, query, tempDir } from "../helpers.ts";
import { call } from "../server/http_support.ts";
import { FakeClock, serveInProcess } from "../server/in_process.ts";
import { dbPath, rowId, runRelay } from "./support.ts";

Deno.test("ls, stat, leases, audit and the status page show a user as a user; release --user ends its seat", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const [first, second] = await addMinted(dir.path, 2, { pool: "prod" });
  const clock = new FakeClock();
  await using server = await serveInProcess(["--ttl", "60s", "--cull-interval", "1h", "--ui"], {
    database: db,
    clock,
  });
  const target = { url: server.url, clock, client: server.client };
  const pool = { "Relay-Pool": "prod" };
  assert.equal((await call(target, "PUT", "/v1/users/Alice@Example.com", pool)).status, 201);
  assert.equal((await call(target, "PUT", "/v1/nodes/render-3", pool)).status, 201);
  const relay = (args: string[]) => runRelay(args, { cwd: dir.path, now: clock.now() });

  await t.step("ls and stat", async () => {
    const ls = await relay(["ls", "--plain"]);
    assert.equal(ls.code, 0, ls.stderr);
    const rows = ls.stdout.split("\n").filter((line) => line.startsWith(`| ${first.id}`));
    assert.equal(rows.length, 1);
    assert.match(rows[0], /\| user alice@example\.com \|/);
    const json = JSON.parse((await relay(["ls", "--json"])).stdout) as Record<string, unknown>[];
    const byId = new Map(json.map((license) => [license.id, license]));
    assert.equal(byId.get(first.id)!.node_fingerprint, null);
    assert.equal(byId.get(first.id)!.user, "alice@example.com");
    assert.equal(byId.get(second.id)!.node_fingerprint, "render-3");
    assert.equal("user" in byId.get(second.id)!, false, "a node's JSON is unchanged");

    const stat = await relay(["stat", "--license", first.id, "--json"]);
    assert.equal(stat.code, 0, stat.stderr);
    assert.equal(JSON.parse(stat.stdout).user, "alice@example.com");
  });

  await t.step("leases", async () => {
    const plain = await relay(["leases", "--plain"]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /^\| user alice@example\.com \| /m);
    assert.match(plain.stdout, /^\| render-3 {15}\| /m);
    const json = JSON.parse((await relay(["leases", "--json"])).stdout);
    const holders = json.leases.map((lease: Record<string, unknown>) => [lease.node, lease.user]);
    assert.deepEqual(holders, [[null, "alice@example.com"], ["render-3", undefined]]);
  });

  await t.step("the README's query of user seats", () => {
    assert.deepEqual(
      query(
        db,
        `SELECT substr(nodes.fingerprint, 7) AS email, licenses.guid
         FROM nodes INNER JOIN licenses ON licenses.node_id = nodes.id
         WHERE nodes.holder_type = 4`,
      ),
      [{ email: "alice@example.com", guid: first.id }],
    );
  });

  await t.step("the status page", async () => {
    const page = await (await fetch(`${server.url}/ui`, { client: server.client })).text();
    assert.match(page, /<code class="fingerprint">user alice@example\.com<\/code>/);
    assert.match(page, /<code class="fingerprint">render-3<\/code>/);
  });

  await t.step("release --user, in any case", async () => {
    clock.advance(5);
    const unknown = await relay(["release", "--user", "bob@example.com"]);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, 'error: User "bob@example.com" not found\n');
    const both = await relay(["release", "--user", "a@b.c", "--node", "render-3"]);
    assert.equal(both.code, 2);
    assert.equal(both.stderr, "error: Give one of --node, --user or --license\n");
    // A node named like the user is not the user.
    const asNode = await relay(["release", "--node", "alice@example.com"]);
    assert.equal(asNode.stderr, 'error: Node "alice@example.com" not found\n');

    const released = await relay(["release", "--user", "ALICE@example.com"]);
    assert.equal(released.stderr, "");
    assert.equal(released.code, 0);
    assert.equal(
      released.stdout,
      `lease released: license ${first.id} in pool prod, user alice@example.com\n`,
    );
    const alice = query<{ id: number }>(db, "SELECT id FROM nodes WHERE holder_type = 4")[0].id;
    const poolId = query<{ id: number }>(db, "SELECT id FROM pools WHERE name = 'prod'")[0].id;
    assert.deepEqual(auditTrail(db).slice(-2), [
      ["license.operator_released", "license", rowId(db, first.id), poolId],
      ["user.deactivated", "user", alice, poolId],
    ]);
    const again = await relay(["release", "--user", "alice@example.com"]);
    assert.equal(again.stderr, 'error: User "alice@example.com" holds no lease\n');
  });

  await t.step("audit --user, and the user in every format", async () => {
    const plain = await relay(["audit", "--user", "Alice@example.com", "--plain"]);
    assert.equal(plain.code, 0, plain.stderr);
    const events = plain.stdout.split("\n").slice(2, -1).map((line) =>
      line.split("|").map((cell) => cell.trim()).slice(2, 5)
    );
    assert.deepEqual(events, [
      ["user.activated", "-", "user alice@example.com"],
      ["user.heartbeat_ping", "-", "user alice@example.com"],
      ["user.deactivated", "-", "user alice@example.com"],
    ]);
    const json = JSON.parse(
      (await relay(["audit", "--user", "alice@example.com", "--json"])).stdout,
    );
    assert.deepEqual(
      json.map((row: Record<string, unknown>) => [row.event, row.entity, row.node, row.user]),
      [
        ["user.activated", "user", null, "alice@example.com"],
        ["user.heartbeat_ping", "user", null, "alice@example.com"],
        ["user.deactivated", "user", null, "alice@example.com"],
      ],
    );
    const csv = await relay(["audit", "--user", "alice@example.com", "--csv", "--limit", "1"]);
    assert.match(csv.stdout, /^id,time,event,entity,entity_id,license,node,pool,user\n/);
    assert.match(csv.stdout, /,user\.deactivated,user,\d+,,,prod,alice@example\.com\n$/);
    const byEvent = await relay(["audit", "--event", "user.deactivated", "--plain"]);
    assert.match(byEvent.stdout, /user\.deactivated/);
  });
});
