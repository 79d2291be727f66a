/**
 * What a holder learns beyond the reference's bodies: `Relay-License-Id`,
 * `Relay-Pool` and `Relay-License-Expires` on 201 and 202, `GET
 * /v1/nodes/{fp}` to look a lease up without extending it, and `Retry-After`
 * on a 410. Real server in-process, with a clock the test moves.
 *
 * @module
 */

import assert from "node:assert/strict";
import { addMinted, dbPath, query, tempDir } from "../helpers.ts";
import { assertJson, call, errorBody, type Reply, type Target } from "./http_support.ts";
import { serveInProcess } from "./in_process.ts";

const TTL = 60;

function fileExpiry(db: string, guid: string): number {
  const [row] = query<{ file_expires_at: number }>(
    db,
    "SELECT file_expires_at FROM licenses WHERE guid = ?",
    guid,
  );
  return row.file_expires_at;
}

function leaseHeaders(reply: Reply) {
  return {
    id: reply.headers.get("Relay-License-Id"),
    pool: reply.headers.get("Relay-Pool"),
    expires: reply.headers.get("Relay-License-Expires"),
  };
}

Deno.test("201 and 202 name the license, its pool and its file's expiry; a 410 says when to retry", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const [prod] = await addMinted(dir.path, 1, { pool: "prod" });
  const [plain] = await addMinted(dir.path, 1);
  await using server = await serveInProcess(["--ttl", `${TTL}s`], { database: db });
  const target: Target = { url: server.url, clock: server.clock, client: server.client };
  const t0 = server.clock.unix();

  const created = await call(target, "PUT", "/v1/nodes/a", { "Relay-Pool": "prod" });
  assert.equal(created.status, 201);
  assert.deepEqual(leaseHeaders(created), {
    id: prod.id,
    pool: "prod",
    expires: String(fileExpiry(db, prod.id)),
  });
  server.clock.advance(10);
  const extended = await call(target, "PUT", "/v1/nodes/a", { "Relay-Pool": "prod" });
  assert.equal(extended.status, 202);
  assert.deepEqual(leaseHeaders(extended), leaseHeaders(created));
  // The reference's bodies are unchanged.
  assert.equal(extended.body, `{"expires_at":${t0 + 10 + TTL},"expires_in":${TTL}}\n`);

  // A license without a pool: no Relay-Pool.
  const noPool = await call(target, "PUT", "/v1/nodes/b");
  assert.deepEqual(leaseHeaders(noPool), {
    id: plain.id,
    pool: null,
    expires: String(fileExpiry(db, plain.id)),
  });

  // prod's one lease runs out at t0 + 10 + TTL; it is t0 + 25.
  server.clock.advance(15);
  const refused = await call(target, "PUT", "/v1/nodes/c", { "Relay-Pool": "prod" });
  assertJson(refused, 410, errorBody("no licenses available"));
  assert.equal(refused.headers.get("Retry-After"), String(TTL - 15));
  assert.equal(refused.headers.get("Relay-License-Id"), null);
  // One second before it runs out: never less than 1.
  server.clock.advanceTo(t0 + 10 + TTL - 1);
  const last = await call(target, "PUT", "/v1/nodes/c", { "Relay-Pool": "prod" });
  assert.equal(last.headers.get("Retry-After"), "1");
  // Once it has run out, the claim takes it.
  server.clock.advance(1);
  assert.equal((await call(target, "PUT", "/v1/nodes/c", { "Relay-Pool": "prod" })).status, 201);
});

Deno.test("a 410 without heartbeats has no Retry-After: no lease runs out by itself", async () => {
  await using dir = await tempDir();
  await addMinted(dir.path, 1);
  await using server = await serveInProcess(["--no-heartbeats"], { database: dbPath(dir.path) });
  const target: Target = { url: server.url, clock: server.clock, client: server.client };
  assert.equal((await call(target, "PUT", "/v1/nodes/a")).status, 201);
  const refused = await call(target, "PUT", "/v1/nodes/b");
  assert.equal(refused.status, 410);
  assert.equal(refused.headers.get("Retry-After"), null);
});

Deno.test("GET /v1/nodes/{fp} shows the lease as a 201 gave it and changes nothing", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const [license] = await addMinted(dir.path, 1, { pool: "prod" });
  await using server = await serveInProcess(["--ttl", `${TTL}s`], { database: db });
  const target: Target = { url: server.url, clock: server.clock, client: server.client };
  const pool = { "Relay-Pool": "prod" };
  const t0 = server.clock.unix();

  assertJson(await call(target, "GET", "/v1/nodes/a", pool), 404, errorBody("claim not found"));
  const created = await call(target, "PUT", "/v1/nodes/a", pool);
  const claimed = JSON.parse(created.body);
  const rows = () => ({
    nodes: query(db, "SELECT * FROM nodes"),
    licenses: query(db, "SELECT id, node_id, claims, last_claimed_at FROM licenses"),
    audit: query(db, "SELECT count(*) AS n FROM audit_logs"),
  });
  const before = rows();

  server.clock.advance(20);
  const got = await call(target, "GET", "/v1/nodes/a", pool);
  assert.equal(got.status, 200);
  assert.equal(got.headers.get("Content-Type"), "application/json");
  assert.deepEqual(JSON.parse(got.body), {
    license_file: claimed.license_file,
    license_key: license.key,
    expires_at: t0 + TTL,
    expires_in: TTL - 20,
  });
  assert.deepEqual(leaseHeaders(got), leaseHeaders(created));
  assert.deepEqual(rows(), before, "a GET neither extends nor records anything");

  // Another pool, or no pool: not this holder's lease there.
  assertJson(await call(target, "GET", "/v1/nodes/a"), 404, errorBody("claim not found"));
  assertJson(
    await call(target, "GET", "/v1/nodes/a", { "Relay-Pool": "nope" }),
    400,
    errorBody("invalid pool header"),
  );
  // Once the lease has run out it is not found, and still nothing is written.
  server.clock.advanceTo(t0 + TTL);
  assertJson(await call(target, "GET", "/v1/nodes/a", pool), 404, errorBody("claim not found"));
  assert.deepEqual(rows(), before);
  // The holder's next PUT is a new lease, as without the GET.
  assert.equal((await call(target, "PUT", "/v1/nodes/a", pool)).status, 201);
});

Deno.test("GET without heartbeats: the lease never runs out", async () => {
  await using dir = await tempDir();
  await addMinted(dir.path, 1);
  await using server = await serveInProcess(["--no-heartbeats"], { database: dbPath(dir.path) });
  const target: Target = { url: server.url, clock: server.clock, client: server.client };
  assert.equal((await call(target, "PUT", "/v1/nodes/a")).status, 201);
  server.clock.advance(86_400);
  const got = await call(target, "GET", "/v1/nodes/a");
  assert.equal(got.status, 200);
  const body = JSON.parse(got.body);
  assert.equal(body.expires_at, null);
  assert.equal(body.expires_in, null);
});
