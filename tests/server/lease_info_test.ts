/**
 * What a holder learns beyond the reference's bodies: `Relay-License-Id`,
 * `Relay-Pool` and `Relay-License-Expires` on 201 and 202, `GET
 * /v1/nodes/{fp}` to look a lease up without extending it, and `Retry-After`
 * on a 410. Real server in-process, with a clock the test moves; each
 * scenario runs on SQLite and on PostgreSQL, and the engines' replies and
 * rows are compared (see scenario_support.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertJson, errorBody, type Reply } from "./http_support.ts";
import { scenario, type ScenarioDatabase } from "./scenario_support.ts";

const TTL = 60;

async function fileExpiry(db: ScenarioDatabase, guid: string): Promise<number> {
  const [row] = await db.rows<{ file_expires_at: number }>(
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

scenario(
  "201 and 202 name the license, its pool and its file's expiry; a 410 says when to retry",
  async (_t, s) => {
    const [prod] = await s.db.add(1, { pool: "prod" });
    const [plain] = await s.db.add(1);
    const server = await s.serve(["--ttl", `${TTL}s`]);
    const t0 = s.clock.unix();
    const pool = { "Relay-Pool": "prod" };

    const created = await s.call(server, "PUT", "/v1/nodes/a", pool);
    assert.equal(created.status, 201);
    assert.deepEqual(leaseHeaders(created), {
      id: prod.id,
      pool: "prod",
      expires: String(await fileExpiry(s.db, prod.id)),
    });
    s.clock.advance(10);
    const extended = await s.call(server, "PUT", "/v1/nodes/a", pool);
    assert.equal(extended.status, 202);
    assert.deepEqual(leaseHeaders(extended), leaseHeaders(created));
    // The reference's bodies are unchanged.
    assert.equal(extended.body, `{"expires_at":${t0 + 10 + TTL},"expires_in":${TTL}}\n`);

    // A license without a pool: no Relay-Pool.
    const noPool = await s.call(server, "PUT", "/v1/nodes/b");
    assert.deepEqual(leaseHeaders(noPool), {
      id: plain.id,
      pool: null,
      expires: String(await fileExpiry(s.db, plain.id)),
    });

    // prod's one lease runs out at t0 + 10 + TTL; it is t0 + 25.
    s.clock.advance(15);
    const refused = await s.call(server, "PUT", "/v1/nodes/c", pool);
    assertJson(refused, 410, errorBody("no licenses available"));
    assert.equal(refused.headers.get("Retry-After"), String(TTL - 15));
    assert.equal(refused.headers.get("Relay-License-Id"), null);
    // One second before it runs out: never less than 1.
    s.clock.advanceTo(t0 + 10 + TTL - 1);
    const last = await s.call(server, "PUT", "/v1/nodes/c", pool);
    assert.equal(last.headers.get("Retry-After"), "1");
    // Once it has run out, the claim takes it.
    s.clock.advance(1);
    assert.equal((await s.call(server, "PUT", "/v1/nodes/c", pool)).status, 201);
  },
);

scenario(
  "a 410 without heartbeats has no Retry-After: no lease runs out by itself",
  async (_t, s) => {
    await s.db.add(1);
    const server = await s.serve(["--no-heartbeats"]);
    assert.equal((await s.call(server, "PUT", "/v1/nodes/a")).status, 201);
    const refused = await s.call(server, "PUT", "/v1/nodes/b");
    assert.equal(refused.status, 410);
    assert.equal(refused.headers.get("Retry-After"), null);
  },
);

scenario(
  "GET /v1/nodes/{fp} shows the lease as a 201 gave it and changes nothing",
  async (_t, s) => {
    const [license] = await s.db.add(1, { pool: "prod" });
    const server = await s.serve(["--ttl", `${TTL}s`]);
    const pool = { "Relay-Pool": "prod" };
    const t0 = s.clock.unix();

    assertJson(await s.call(server, "GET", "/v1/nodes/a", pool), 404, errorBody("claim not found"));
    const created = await s.call(server, "PUT", "/v1/nodes/a", pool);
    const claimed = JSON.parse(created.body);
    const rows = async () => ({
      nodes: await s.db.rows("SELECT * FROM nodes"),
      licenses: await s.db.rows("SELECT id, node_id, claims, last_claimed_at FROM licenses"),
      audit: await s.db.rows("SELECT count(*) AS n FROM audit_logs"),
    });
    const before = await rows();

    s.clock.advance(20);
    const got = await s.call(server, "GET", "/v1/nodes/a", pool);
    assert.equal(got.status, 200);
    assert.equal(got.headers.get("Content-Type"), "application/json");
    assert.deepEqual(JSON.parse(got.body), {
      license_file: claimed.license_file,
      license_key: license.key,
      expires_at: t0 + TTL,
      expires_in: TTL - 20,
    });
    assert.deepEqual(leaseHeaders(got), leaseHeaders(created));
    assert.deepEqual(await rows(), before, "a GET neither extends nor records anything");

    // Another pool, or no pool: not this holder's lease there.
    assertJson(await s.call(server, "GET", "/v1/nodes/a"), 404, errorBody("claim not found"));
    assertJson(
      await s.call(server, "GET", "/v1/nodes/a", { "Relay-Pool": "nope" }),
      400,
      errorBody("invalid pool header"),
    );
    // Once the lease has run out it is not found, and still nothing is written.
    s.clock.advanceTo(t0 + TTL);
    assertJson(await s.call(server, "GET", "/v1/nodes/a", pool), 404, errorBody("claim not found"));
    assert.deepEqual(await rows(), before);
    // The holder's next PUT is a new lease, as without the GET.
    assert.equal((await s.call(server, "PUT", "/v1/nodes/a", pool)).status, 201);
  },
);

scenario("GET without heartbeats: the lease never runs out", async (_t, s) => {
  await s.db.add(1);
  const server = await s.serve(["--no-heartbeats"]);
  assert.equal((await s.call(server, "PUT", "/v1/nodes/a")).status, 201);
  s.clock.advance(86_400);
  const got = await s.call(server, "GET", "/v1/nodes/a");
  assert.equal(got.status, 200);
  const body = JSON.parse(got.body);
  assert.equal(body.expires_at, null);
  assert.equal(body.expires_in, null);
});
