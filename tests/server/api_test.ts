/**
 * The HTTP API as a client sees it, against the real `relay serve` command
 * run in-process on port 0 (the same `run()` as the binary, on a clock the
 * test controls): status codes, exact body bytes, headers, and the rows it
 * leaves behind. Every scenario runs once per storage engine, SQLite and
 * PostgreSQL, and the engines' replies and rows are compared (see
 * scenario_support.ts); the options (pools, strategies, signing, audit) are
 * in api_options_test.ts.
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
  relayClock,
} from "./http_support.ts";
import { scenario } from "./scenario_support.ts";

scenario("GET /v1/health: 200, empty, Relay-Clock, unsigned", async (t, s) => {
  await using server = await s.serve([]);

  await t.step("GET", async () => {
    const reply = await s.call(server, "GET", "/v1/health");
    assertEmpty(reply, 200);
    assert.equal(reply.headers.get("Relay-Signature"), null);
  });

  await t.step("HEAD", async () => {
    const reply = await s.call(server, "HEAD", "/v1/health");
    assertEmpty(reply, 200);
    assert.equal(reply.headers.get("Relay-Signature"), null);
  });

  await t.step("POST is 405 with Allow", async () => {
    const reply = await s.call(server, "POST", "/v1/health");
    assertJson(reply, 405, errorBody("method not allowed"));
    assert.equal(reply.headers.get("Allow"), "GET, HEAD");
  });

  await t.step("an empty database answers claims with 410", async () => {
    assertJson(await s.claim(server, "node-1"), 410, errorBody("no licenses available"));
    // Only the row the denial is audited against (server/denials.ts): deactivated, no lease.
    assert.deepEqual(
      await s.db.rows(
        `SELECT fingerprint, last_heartbeat_at,
           CASE WHEN deactivated_at IS NOT NULL THEN 1 ELSE 0 END AS inactive FROM nodes`,
      ),
      [{ fingerprint: "node-1", last_heartbeat_at: null, inactive: 1 }],
    );
  });
});

scenario("claim, heartbeat, release: bodies, headers and rows", async (t, s) => {
  const [file] = await s.db.add(1);
  const before = (await s.db.auditTrail()).length;
  await using server = await s.serve([]);
  const license = await s.db.license(file.key);
  let firstClaimClock = 0;

  await t.step("PUT with a free license: 201 with the license file and key", async () => {
    const reply = await s.claim(server, "node-1");
    firstClaimClock = relayClock(reply);
    assertJson(reply, 201, createdBody(file.certificate, file.key, firstClaimClock, 60));
    const json = JSON.parse(reply.body);
    assert.deepEqual(Object.keys(json), [
      "license_file",
      "license_key",
      "expires_at",
      "expires_in",
    ]);
    const decoded = Uint8Array.fromBase64(json.license_file);
    assert.equal(new TextDecoder().decode(decoded), file.certificate);
    assert.deepEqual(decoded, new Uint8Array(license.file));
    assert.equal(reply.headers.get("Relay-Signature"), null);
  });

  await t.step("the same node again: 202 with the new expiry", async () => {
    const reply = await s.claim(server, "node-1");
    assertJson(reply, 202, extendedBody(relayClock(reply), 60));
  });

  await t.step("another node while the only license is leased: 410", async () => {
    assertJson(await s.claim(server, "node-2"), 410, errorBody("no licenses available"));
  });

  let node1 = 0;
  await t.step("rows while leased", async () => {
    const node = await s.db.node("node-1");
    node1 = node.id;
    assert.equal(node.deactivated_at, null);
    assert.ok(node.last_heartbeat_at! >= firstClaimClock);
    const row = await s.db.license(file.key);
    assert.equal(row.node_id, node.id);
    assert.equal(row.claims, 1, "an extension is not a new claim");
    assert.equal(row.last_claimed_at, firstClaimClock);
    assert.equal(row.last_released_at, null);
    // node-2 was denied: a deactivated row for its audit record, holding nothing.
    assert.notEqual((await s.db.node("node-2")).deactivated_at, null);
    assert.equal(row.node_id, node.id);
  });

  let releaseClock = 0;
  await t.step("DELETE: 204, empty, no Content-Type", async () => {
    const reply = await s.release(server, "node-1");
    assertEmpty(reply, 204);
    releaseClock = relayClock(reply);
    const row = await s.db.license(file.key);
    assert.equal(row.node_id, null);
    assert.equal(row.last_released_at, releaseClock);
    assert.equal((await s.db.node("node-1")).deactivated_at, releaseClock);
  });

  await t.step("DELETE again, and DELETE of a never-seen node: 404", async () => {
    assertJson(await s.release(server, "node-1"), 404, errorBody("claim not found"));
    assertJson(await s.release(server, "never-seen"), 404, errorBody("claim not found"));
  });

  await t.step("the released license goes to the next node: claims counts leases", async () => {
    const reply = await s.claim(server, "node-2");
    const clock = relayClock(reply);
    assertJson(reply, 201, createdBody(file.certificate, file.key, clock, 60));
    const row = await s.db.license(file.key);
    assert.equal(row.claims, 2);
    assert.equal(row.last_claimed_at, clock);
    assert.equal(row.node_id, (await s.db.node("node-2")).id);
    assertEmpty(await s.release(server, "node-2"), 204);
  });

  await t.step("audit trail", async () => {
    const node2 = (await s.db.node("node-2")).id;
    const id = license.id;
    assert.deepEqual((await s.db.auditTrail()).slice(before), [
      ["node.activated", "node", node1, null],
      ["license.leased", "license", id, null],
      ["node.heartbeat_ping", "node", node1, null],
      ["license.lease_extended", "license", id, null],
      ["node.heartbeat_ping", "node", node1, null],
      ["license.denied", "node", node2, null],
      ["license.released", "license", id, null],
      ["node.deactivated", "node", node1, null],
      ["node.activated", "node", node2, null],
      ["license.leased", "license", id, null],
      ["node.heartbeat_ping", "node", node2, null],
      ["license.released", "license", id, null],
      ["node.deactivated", "node", node2, null],
    ]);
  });

  await t.step("a released node that claims again is reactivated with a new lease", async () => {
    const reply = await s.claim(server, "node-1");
    assertJson(reply, 201, createdBody(file.certificate, file.key, relayClock(reply), 60));
    const node = await s.db.node("node-1");
    assert.equal(node.id, node1, "the same nodes row");
    assert.equal(node.deactivated_at, null);
    assert.equal((await s.db.license(file.key)).claims, 3);
  });
});

scenario("--ttl and --no-heartbeats", async (t, s) => {
  const [file] = await s.db.add(1);

  await t.step("--ttl 2m: expires_in 120 on 201 and 202", async () => {
    await using server = await s.serve(["--ttl", "2m"]);
    const created = await s.claim(server, "node-1");
    assertJson(created, 201, createdBody(file.certificate, file.key, relayClock(created), 120));
    const extended = await s.claim(server, "node-1");
    assertJson(extended, 202, extendedBody(relayClock(extended), 120));
    assertEmpty(await s.release(server, "node-1"), 204);
  });

  await t.step("--no-heartbeats: a second claim by the same node is 409", async () => {
    const before = (await s.db.auditTrail()).length;
    await using server = await s.serve(["--no-heartbeats"]);
    const created = await s.claim(server, "node-1");
    assertJson(created, 201, createdBody(file.certificate, file.key, relayClock(created), 60));
    assertJson(
      await s.claim(server, "node-1"),
      409,
      errorBody("failed to claim license due to conflict"),
    );
    assertJson(await s.claim(server, "node-2"), 410, errorBody("no licenses available"));
    assertEmpty(await s.release(server, "node-1"), 204);
    const node = (await s.db.node("node-1")).id;
    const license = (await s.db.license(file.key)).id;
    assert.deepEqual((await s.db.auditTrail()).slice(before), [
      ["node.activated", "node", node, null],
      ["license.leased", "license", license, null],
      ["node.heartbeat_ping", "node", node, null],
      ["license.denied", "node", (await s.db.node("node-2")).id, null],
      ["license.released", "license", license, null],
      ["node.deactivated", "node", node, null],
    ]);
  });
});

scenario("bad requests", async (t, s) => {
  const files: MintedFile[] = await s.db.add(2);
  await using server = await s.serve([]);

  await t.step("POST /v1/nodes/x: 405 with Allow", async () => {
    const reply = await s.call(server, "POST", "/v1/nodes/x");
    assertJson(reply, 405, errorBody("method not allowed"));
    assert.equal(reply.headers.get("Allow"), "GET, PUT, DELETE");
  });

  await t.step("unknown paths: 404 not found", async () => {
    for (const path of ["/nope", "/", "/v1", "/v1/nodes", "/v1/nodes/", "/v1/nodes/a/b"]) {
      assertJson(await s.call(server, "GET", path), 404, errorBody("not found"));
    }
    assertJson(await s.call(server, "PUT", "/v1/nodes/a/b"), 404, errorBody("not found"));
  });

  await t.step("a fingerprint over 256 characters: 400; exactly 256: accepted", async () => {
    assertJson(
      await s.claim(server, "f".repeat(257)),
      400,
      errorBody("fingerprint too long"),
    );
    assertJson(
      await s.release(server, "f".repeat(257)),
      400,
      errorBody("fingerprint too long"),
    );
    const exact = await s.claim(server, "f".repeat(256));
    assert.equal(exact.status, 201);
    assert.equal((await s.db.node("f".repeat(256))).fingerprint.length, 256);
    assertEmpty(await s.release(server, "f".repeat(256)), 204);
    // Counted in characters after decoding, not in encoded bytes.
    const accented = "é".repeat(256);
    assert.equal((await s.claim(server, encodeURIComponent(accented))).status, 201);
    assert.equal((await s.db.node(accented)).fingerprint, accented);
    assertEmpty(await s.release(server, encodeURIComponent(accented)), 204);
  });

  await t.step("control characters and invalid UTF-8: 400 invalid fingerprint", async () => {
    for (const fp of ["%00", "a%0Ab", "%0D", "%1F", "%7F", "%FF", "a%C3", "%zz"]) {
      assertJson(await s.claim(server, fp), 400, errorBody("invalid fingerprint"));
      assertJson(await s.release(server, fp), 400, errorBody("invalid fingerprint"));
    }
  });

  await t.step("a percent-encoded fingerprint is decoded", async () => {
    const reply = await s.claim(server, "a%20b%2Fc");
    assertJson(reply, 201, createdBody(files[0].certificate, files[0].key, relayClock(reply), 60));
    assert.equal((await s.db.node("a b/c")).fingerprint, "a b/c");
    const extended = await s.claim(server, "a%20b%2fc");
    assertJson(extended, 202, extendedBody(relayClock(extended), 60));
    assertEmpty(await s.release(server, "a%20b%2Fc"), 204);
  });

  await t.step("no rows for rejected requests", async () => {
    const fingerprints = (await s.db.rows<{ fingerprint: string }>(
      "SELECT fingerprint FROM nodes ORDER BY id",
    )).map((row) => row.fingerprint);
    assert.deepEqual(fingerprints, ["f".repeat(256), "é".repeat(256), "a b/c"]);
  });
});
