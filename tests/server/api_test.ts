/**
 * The HTTP API as a client sees it, against the real `relay serve` command
 * run in-process on port 0 (the same `run()` as the binary, on a clock the
 * test controls): status codes, exact body bytes, headers, and the rows it
 * leaves behind.
 *
 * @module
 */

import assert from "node:assert/strict";
import { addMinted, auditTrail, type MintedFile, query, tempDir } from "../helpers.ts";
import {
  assertEmpty,
  assertJson,
  assertSigned,
  call,
  claim,
  createdBody,
  dbPath,
  errorBody,
  extendedBody,
  relayClock,
  release,
  type Target,
} from "./http_support.ts";
import { serveInProcess } from "./in_process.ts";

interface LicenseRow {
  id: number;
  key: string;
  file: Uint8Array;
  claims: number;
  node_id: number | null;
  pool_id: number | null;
  last_claimed_at: number | null;
  last_released_at: number | null;
}

function licenseRow(db: string, key: string): LicenseRow {
  const rows = query<LicenseRow>(
    db,
    `SELECT id, key, file, claims, node_id, pool_id, last_claimed_at, last_released_at
     FROM licenses WHERE key = ?`,
    key,
  );
  assert.equal(rows.length, 1, `one license with key ${key}`);
  return rows[0];
}

interface NodeRow {
  id: number;
  fingerprint: string;
  last_heartbeat_at: number | null;
  deactivated_at: number | null;
}

function nodeRow(db: string, fingerprint: string): NodeRow {
  const rows = query<NodeRow>(
    db,
    "SELECT id, fingerprint, last_heartbeat_at, deactivated_at FROM nodes WHERE fingerprint = ?",
    fingerprint,
  );
  assert.equal(rows.length, 1, `one node ${JSON.stringify(fingerprint)}`);
  return rows[0];
}

function poolId(db: string, name: string): number {
  const rows = query<{ id: number }>(db, "SELECT id FROM pools WHERE name = ?", name);
  assert.equal(rows.length, 1, `pool ${name} exists`);
  return rows[0].id;
}

/** The license key in a 201 body. */
function leasedKey(body: string): string {
  return JSON.parse(body).license_key;
}

Deno.test("GET /v1/health: 200, empty, Relay-Clock, unsigned", async (t) => {
  await using dir = await tempDir();
  await using server = await serveInProcess([], { database: dbPath(dir.path) });

  await t.step("GET", async () => {
    const reply = await call(server, "GET", "/v1/health");
    assertEmpty(reply, 200);
    assert.equal(reply.headers.get("Relay-Signature"), null);
  });

  await t.step("HEAD", async () => {
    const reply = await call(server, "HEAD", "/v1/health");
    assertEmpty(reply, 200);
    assert.equal(reply.headers.get("Relay-Signature"), null);
  });

  await t.step("POST is 405 with Allow", async () => {
    const reply = await call(server, "POST", "/v1/health");
    assertJson(reply, 405, errorBody("method not allowed"));
    assert.equal(reply.headers.get("Allow"), "GET, HEAD");
  });

  await t.step("an empty database answers claims with 410", async () => {
    assertJson(await claim(server, "node-1"), 410, errorBody("no licenses available"));
    // Only the row the denial is audited against (server/denials.ts): deactivated, no lease.
    assert.deepEqual(
      query(
        dbPath(dir.path),
        "SELECT fingerprint, last_heartbeat_at, deactivated_at IS NOT NULL AS inactive FROM nodes",
      ),
      [{ fingerprint: "node-1", last_heartbeat_at: null, inactive: 1 }],
    );
  });
});

Deno.test("claim, heartbeat, release: bodies, headers and rows", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const [file] = await addMinted(dir.path, 1);
  const before = auditTrail(db).length;
  await using server = await serveInProcess([], { database: dbPath(dir.path) });
  const license = licenseRow(db, file.key);
  let firstClaimClock = 0;

  await t.step("PUT with a free license: 201 with the license file and key", async () => {
    const reply = await claim(server, "node-1");
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
    const reply = await claim(server, "node-1");
    assertJson(reply, 202, extendedBody(relayClock(reply), 60));
  });

  await t.step("another node while the only license is leased: 410", async () => {
    assertJson(await claim(server, "node-2"), 410, errorBody("no licenses available"));
  });

  let node1 = 0;
  await t.step("rows while leased", () => {
    const node = nodeRow(db, "node-1");
    node1 = node.id;
    assert.equal(node.deactivated_at, null);
    assert.ok(node.last_heartbeat_at! >= firstClaimClock);
    const row = licenseRow(db, file.key);
    assert.equal(row.node_id, node.id);
    assert.equal(row.claims, 1, "an extension is not a new claim");
    assert.equal(row.last_claimed_at, firstClaimClock);
    assert.equal(row.last_released_at, null);
    // node-2 was denied: a deactivated row for its audit record, holding nothing.
    assert.notEqual(nodeRow(db, "node-2").deactivated_at, null);
    assert.equal(row.node_id, node.id);
  });

  let releaseClock = 0;
  await t.step("DELETE: 204, empty, no Content-Type", async () => {
    const reply = await release(server, "node-1");
    assertEmpty(reply, 204);
    releaseClock = relayClock(reply);
    const row = licenseRow(db, file.key);
    assert.equal(row.node_id, null);
    assert.equal(row.last_released_at, releaseClock);
    assert.equal(nodeRow(db, "node-1").deactivated_at, releaseClock);
  });

  await t.step("DELETE again, and DELETE of a never-seen node: 404", async () => {
    assertJson(await release(server, "node-1"), 404, errorBody("claim not found"));
    assertJson(await release(server, "never-seen"), 404, errorBody("claim not found"));
  });

  await t.step("the released license goes to the next node: claims counts leases", async () => {
    const reply = await claim(server, "node-2");
    const clock = relayClock(reply);
    assertJson(reply, 201, createdBody(file.certificate, file.key, clock, 60));
    const row = licenseRow(db, file.key);
    assert.equal(row.claims, 2);
    assert.equal(row.last_claimed_at, clock);
    assert.equal(row.node_id, nodeRow(db, "node-2").id);
    assertEmpty(await release(server, "node-2"), 204);
  });

  await t.step("audit trail", () => {
    const node2 = nodeRow(db, "node-2").id;
    const id = license.id;
    assert.deepEqual(auditTrail(db).slice(before), [
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
    const reply = await claim(server, "node-1");
    assertJson(reply, 201, createdBody(file.certificate, file.key, relayClock(reply), 60));
    const node = nodeRow(db, "node-1");
    assert.equal(node.id, node1, "the same nodes row");
    assert.equal(node.deactivated_at, null);
    assert.equal(licenseRow(db, file.key).claims, 3);
  });
});

Deno.test("--ttl and --no-heartbeats", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const [file] = await addMinted(dir.path, 1);

  await t.step("--ttl 2m: expires_in 120 on 201 and 202", async () => {
    await using server = await serveInProcess(["--ttl", "2m"], { database: dbPath(dir.path) });
    const created = await claim(server, "node-1");
    assertJson(created, 201, createdBody(file.certificate, file.key, relayClock(created), 120));
    const extended = await claim(server, "node-1");
    assertJson(extended, 202, extendedBody(relayClock(extended), 120));
    assertEmpty(await release(server, "node-1"), 204);
  });

  await t.step("--no-heartbeats: a second claim by the same node is 409", async () => {
    const before = auditTrail(db).length;
    await using server = await serveInProcess(["--no-heartbeats"], { database: dbPath(dir.path) });
    const created = await claim(server, "node-1");
    assertJson(created, 201, createdBody(file.certificate, file.key, relayClock(created), 60));
    assertJson(
      await claim(server, "node-1"),
      409,
      errorBody("failed to claim license due to conflict"),
    );
    assertJson(await claim(server, "node-2"), 410, errorBody("no licenses available"));
    assertEmpty(await release(server, "node-1"), 204);
    const node = nodeRow(db, "node-1").id;
    const license = licenseRow(db, file.key).id;
    assert.deepEqual(auditTrail(db).slice(before), [
      ["node.activated", "node", node, null],
      ["license.leased", "license", license, null],
      ["node.heartbeat_ping", "node", node, null],
      ["license.denied", "node", nodeRow(db, "node-2").id, null],
      ["license.released", "license", license, null],
      ["node.deactivated", "node", node, null],
    ]);
  });
});

Deno.test("pools: Relay-Pool header and --pool", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const [prod] = await addMinted(dir.path, 1, { pool: "prod" });
  const [dev] = await addMinted(dir.path, 1, { pool: "dev" });
  const prodId = poolId(db, "prod");
  const devId = poolId(db, "dev");

  await t.step("without --pool", async (t) => {
    await using server = await serveInProcess([], { database: dbPath(dir.path) });

    await t.step("no header: only licenses without a pool, so 410", async () => {
      assertJson(await claim(server, "n1"), 410, errorBody("no licenses available"));
    });

    await t.step("Relay-Pool: dev claims the dev license", async () => {
      const before = auditTrail(db).length;
      const reply = await claim(server, "n1", "dev");
      assertJson(reply, 201, createdBody(dev.certificate, dev.key, relayClock(reply), 60));
      assert.equal(leasedKey(reply.body), dev.key);
      const extended = await claim(server, "n1", "dev");
      assertJson(extended, 202, extendedBody(relayClock(extended), 60));
      const node = nodeRow(db, "n1").id;
      const license = licenseRow(db, dev.key);
      assert.equal(license.pool_id, devId);
      assert.equal(license.node_id, node);
      assert.deepEqual(auditTrail(db).slice(before), [
        ["node.activated", "node", node, devId],
        ["license.leased", "license", license.id, devId],
        ["node.heartbeat_ping", "node", node, devId],
        ["license.lease_extended", "license", license.id, devId],
        ["node.heartbeat_ping", "node", node, devId],
      ]);
    });

    await t.step("an unknown pool header: 400", async () => {
      assertJson(await claim(server, "n2", "nope"), 400, errorBody("invalid pool header"));
      assertJson(await release(server, "n1", "nope"), 400, errorBody("invalid pool header"));
    });

    await t.step("a node leasing in dev claiming in prod: 409", async () => {
      assertJson(
        await claim(server, "n1", "prod"),
        409,
        errorBody("failed to claim license due to conflict"),
      );
      assert.equal(licenseRow(db, prod.key).node_id, null);
    });

    await t.step("release with the wrong pool header: 404; the right one: 204", async () => {
      const before = auditTrail(db).length;
      assertJson(await release(server, "n1", "prod"), 404, errorBody("claim not found"));
      assertJson(await release(server, "n1"), 404, errorBody("claim not found"));
      assert.equal(licenseRow(db, dev.key).node_id, nodeRow(db, "n1").id);
      assertEmpty(await release(server, "n1", "dev"), 204);
      const node = nodeRow(db, "n1").id;
      const license = licenseRow(db, dev.key).id;
      assert.deepEqual(auditTrail(db).slice(before), [
        ["license.released", "license", license, devId],
        ["node.deactivated", "node", node, devId],
      ]);
    });

    await t.step("a node leasing in prod claiming in dev: 409", async () => {
      const reply = await claim(server, "n3", "prod");
      assertJson(reply, 201, createdBody(prod.certificate, prod.key, relayClock(reply), 60));
      assertJson(
        await claim(server, "n3", "dev"),
        409,
        errorBody("failed to claim license due to conflict"),
      );
      assert.equal(licenseRow(db, dev.key).node_id, null);
      assertEmpty(await release(server, "n3", "prod"), 204);
    });
  });

  await t.step("--pool prod", async (t) => {
    await using server = await serveInProcess(["--pool", "prod"], { database: dbPath(dir.path) });

    await t.step("Relay-Pool: dev is 400 unsupported", async () => {
      assertJson(await claim(server, "p1", "dev"), 400, errorBody("unsupported pool header"));
      assertJson(
        await release(server, "p1", "dev"),
        400,
        errorBody("unsupported pool header"),
      );
    });

    await t.step("no header claims and releases in prod", async () => {
      const before = auditTrail(db).length;
      const reply = await claim(server, "p1");
      assertJson(reply, 201, createdBody(prod.certificate, prod.key, relayClock(reply), 60));
      assertJson(await claim(server, "p2"), 410, errorBody("no licenses available"));
      assertEmpty(await release(server, "p1"), 204);
      const node = nodeRow(db, "p1").id;
      const license = licenseRow(db, prod.key).id;
      assert.deepEqual(auditTrail(db).slice(before), [
        ["node.activated", "node", node, prodId],
        ["license.leased", "license", license, prodId],
        ["node.heartbeat_ping", "node", node, prodId],
        ["license.denied", "node", nodeRow(db, "p2").id, prodId],
        ["license.released", "license", license, prodId],
        ["node.deactivated", "node", node, prodId],
      ]);
    });

    await t.step("Relay-Pool: prod claims and releases in prod", async () => {
      const reply = await claim(server, "p2", "prod");
      assertJson(reply, 201, createdBody(prod.certificate, prod.key, relayClock(reply), 60));
      assertEmpty(await release(server, "p2", "prod"), 204);
    });
  });

  await t.step(
    "--pool naming no pool: a warning at start, then claims are 400 invalid pool header",
    async () => {
      await using server = await serveInProcess(["--pool", "nope"], { database: dbPath(dir.path) });
      const warning = JSON.parse(server.lines[0]);
      assert.equal(warning.level, "warn");
      assert.equal(warning.pool, "nope");
      assert.match(warning.msg, /does not exist yet/);
      assertJson(await claim(server, "q1"), 400, errorBody("invalid pool header"));
    },
  );
});

Deno.test("strategies pick the first, last or a random free license", async (t) => {
  await using dir = await tempDir();
  const files = await addMinted(dir.path, 3);
  const keys = files.map((file) => file.key);

  /** Two claims, a release, a third claim: the keys each claim got. */
  async function sequence(url: Target): Promise<string[]> {
    const got: string[] = [];
    for (const fp of ["a", "b"]) {
      const reply = await claim(url, fp);
      assert.equal(reply.status, 201);
      got.push(leasedKey(reply.body));
    }
    assertEmpty(await release(url, "a"), 204);
    const reply = await claim(url, "c");
    assert.equal(reply.status, 201);
    got.push(leasedKey(reply.body));
    for (const fp of ["b", "c"]) assertEmpty(await release(url, fp), 204);
    return got;
  }

  await t.step("default is fifo", async () => {
    await using server = await serveInProcess([], { database: dbPath(dir.path) });
    assert.deepEqual(await sequence(server), [keys[0], keys[1], keys[0]]);
  });

  await t.step("--strategy fifo", async () => {
    await using server = await serveInProcess(["--strategy", "fifo"], {
      database: dbPath(dir.path),
    });
    assert.deepEqual(await sequence(server), [keys[0], keys[1], keys[0]]);
  });

  await t.step("--strategy lifo", async () => {
    await using server = await serveInProcess(["--strategy", "lifo"], {
      database: dbPath(dir.path),
    });
    assert.deepEqual(await sequence(server), [keys[2], keys[1], keys[2]]);
  });

  await t.step("RELAY_STRATEGY=lifo", async () => {
    await using server = await serveInProcess([], {
      database: dbPath(dir.path),
      env: { RELAY_STRATEGY: "lifo" },
    });
    assert.deepEqual(await sequence(server), [keys[2], keys[1], keys[2]]);
  });

  await t.step("--strategy rand: every license, and only these", async () => {
    await using server = await serveInProcess(["--strategy", "rand"], {
      database: dbPath(dir.path),
    });
    const seen = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const reply = await claim(server, "r");
      assert.equal(reply.status, 201);
      const key = leasedKey(reply.body);
      assert.ok(keys.includes(key), `a license of the pool: ${key}`);
      seen.set(key, (seen.get(key) ?? 0) + 1);
      assertEmpty(await release(server, "r"), 204);
    }
    assert.deepEqual([...seen.keys()].sort(), [...keys].sort(), `all seen: ${[...seen]}`);

    const held = new Set<string>();
    for (const fp of ["x", "y", "z"]) {
      const reply = await claim(server, fp);
      assert.equal(reply.status, 201);
      held.add(leasedKey(reply.body));
    }
    assert.equal(held.size, 3, "three nodes hold three different licenses");
    assertJson(await claim(server, "w"), 410, errorBody("no licenses available"));
  });
});

Deno.test("signed responses", async (t) => {
  const secret = "s3cret";
  await using dir = await tempDir();
  const [file] = await addMinted(dir.path, 1);

  await t.step("--signing-secret signs every response", async () => {
    await using server = await serveInProcess(["--signing-secret", secret], {
      database: dbPath(dir.path),
    });
    const replies = [
      await call(server, "GET", "/v1/health"),
      await claim(server, "n1"),
      await claim(server, "n1"),
      await claim(server, "n2"),
      await claim(server, "n1", "nope"),
      await call(server, "POST", "/v1/nodes/n1"),
      await call(server, "GET", "/nope"),
      await release(server, "n1"),
      await release(server, "n1"),
    ];
    assert.deepEqual(replies.map((reply) => reply.status), [
      200,
      201,
      202,
      410,
      400,
      405,
      404,
      204,
      404,
    ]);
    assert.equal(
      replies[1].body,
      createdBody(file.certificate, file.key, relayClock(replies[1]), 60),
    );
    for (const reply of replies) await assertSigned(reply, secret);
  });

  await t.step("--no-heartbeats 409 is signed too", async () => {
    await using server = await serveInProcess(["--signing-secret", secret, "--no-heartbeats"], {
      database: dbPath(dir.path),
    });
    assert.equal((await claim(server, "n1")).status, 201);
    const conflict = await claim(server, "n1");
    assertJson(conflict, 409, errorBody("failed to claim license due to conflict"));
    await assertSigned(conflict, secret);
    assertEmpty(await release(server, "n1"), 204);
  });

  await t.step("RELAY_SIGNING_SECRET", async () => {
    await using server = await serveInProcess([], {
      database: dbPath(dir.path),
      env: { RELAY_SIGNING_SECRET: secret },
    });
    for (
      const reply of [
        await call(server, "GET", "/v1/health"),
        await claim(server, "n1"),
        await release(server, "n1"),
      ]
    ) {
      await assertSigned(reply, secret);
    }
  });
});

Deno.test("audit: pooled trail, and --no-audit / RELAY_NO_AUDIT write none", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const [prod] = await addMinted(dir.path, 1, { pool: "prod" });
  const prodId = poolId(db, "prod");

  await t.step("claim, extend, release in a pool", async () => {
    const before = auditTrail(db).length;
    await using server = await serveInProcess([], { database: dbPath(dir.path) });
    const created = await claim(server, "n1", "prod");
    const createdClock = relayClock(created);
    assertJson(created, 201, createdBody(prod.certificate, prod.key, createdClock, 60));
    assert.equal((await claim(server, "n1", "prod")).status, 202);
    const released = await release(server, "n1", "prod");
    assertEmpty(released, 204);
    const node = nodeRow(db, "n1");
    const license = licenseRow(db, prod.key);
    assert.deepEqual(auditTrail(db).slice(before), [
      ["node.activated", "node", node.id, prodId],
      ["license.leased", "license", license.id, prodId],
      ["node.heartbeat_ping", "node", node.id, prodId],
      ["license.lease_extended", "license", license.id, prodId],
      ["node.heartbeat_ping", "node", node.id, prodId],
      ["license.released", "license", license.id, prodId],
      ["node.deactivated", "node", node.id, prodId],
    ]);
    const times = query<{ created_at: number }>(
      db,
      "SELECT created_at FROM audit_logs ORDER BY id",
    ).slice(before).map((row) => row.created_at);
    assert.equal(times[0], createdClock);
    assert.equal(times[6], relayClock(released));
    assert.equal(license.claims, 1);
    assert.equal(license.node_id, null);
    assert.equal(license.last_claimed_at, createdClock);
    assert.equal(license.last_released_at, relayClock(released));
    assert.equal(node.deactivated_at, relayClock(released));
  });

  for (
    const [name, args, env] of [
      ["relay --no-audit serve", ["--no-audit"], {}],
      ["relay serve with RELAY_NO_AUDIT=1", [], { RELAY_NO_AUDIT: "1" }],
    ] as const
  ) {
    await t.step(name, async () => {
      const before = auditTrail(db).length;
      await using server = await serveInProcess([], { database: db, global: [...args], env });
      assert.equal(server.startup.audit, false);
      assert.equal((await claim(server, "n2", "prod")).status, 201);
      assert.equal((await claim(server, "n2", "prod")).status, 202);
      assertEmpty(await release(server, "n2", "prod"), 204);
      assert.equal(auditTrail(db).length, before, "no audit rows");
      const license = licenseRow(db, prod.key);
      assert.equal(license.node_id, null);
      assert.equal(license.last_released_at, server.clock.unix());
      const { code } = await server.stop();
      assert.equal(code, 0);
    });
  }
});

Deno.test("bad requests", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const files: MintedFile[] = await addMinted(dir.path, 2);
  await using server = await serveInProcess([], { database: dbPath(dir.path) });

  await t.step("POST /v1/nodes/x: 405 with Allow", async () => {
    const reply = await call(server, "POST", "/v1/nodes/x");
    assertJson(reply, 405, errorBody("method not allowed"));
    assert.equal(reply.headers.get("Allow"), "GET, PUT, DELETE");
  });

  await t.step("unknown paths: 404 not found", async () => {
    for (const path of ["/nope", "/", "/v1", "/v1/nodes", "/v1/nodes/", "/v1/nodes/a/b"]) {
      assertJson(await call(server, "GET", path), 404, errorBody("not found"));
    }
    assertJson(await call(server, "PUT", "/v1/nodes/a/b"), 404, errorBody("not found"));
  });

  await t.step("a fingerprint over 256 characters: 400; exactly 256: accepted", async () => {
    assertJson(
      await claim(server, "f".repeat(257)),
      400,
      errorBody("fingerprint too long"),
    );
    assertJson(
      await release(server, "f".repeat(257)),
      400,
      errorBody("fingerprint too long"),
    );
    const exact = await claim(server, "f".repeat(256));
    assert.equal(exact.status, 201);
    assert.equal(nodeRow(db, "f".repeat(256)).fingerprint.length, 256);
    assertEmpty(await release(server, "f".repeat(256)), 204);
    // Counted in characters after decoding, not in encoded bytes.
    const accented = "é".repeat(256);
    assert.equal((await claim(server, encodeURIComponent(accented))).status, 201);
    assert.equal(nodeRow(db, accented).fingerprint, accented);
    assertEmpty(await release(server, encodeURIComponent(accented)), 204);
  });

  await t.step("control characters and invalid UTF-8: 400 invalid fingerprint", async () => {
    for (const fp of ["%00", "a%0Ab", "%0D", "%1F", "%7F", "%FF", "a%C3", "%zz"]) {
      assertJson(await claim(server, fp), 400, errorBody("invalid fingerprint"));
      assertJson(await release(server, fp), 400, errorBody("invalid fingerprint"));
    }
  });

  await t.step("a percent-encoded fingerprint is decoded", async () => {
    const reply = await claim(server, "a%20b%2Fc");
    assertJson(reply, 201, createdBody(files[0].certificate, files[0].key, relayClock(reply), 60));
    assert.equal(nodeRow(db, "a b/c").fingerprint, "a b/c");
    const extended = await claim(server, "a%20b%2fc");
    assertJson(extended, 202, extendedBody(relayClock(extended), 60));
    assertEmpty(await release(server, "a%20b%2Fc"), 204);
  });

  await t.step("no rows for rejected requests", () => {
    const fingerprints = query<{ fingerprint: string }>(
      db,
      "SELECT fingerprint FROM nodes ORDER BY id",
    ).map((row) => row.fingerprint);
    assert.deepEqual(fingerprints, ["f".repeat(256), "é".repeat(256), "a b/c"]);
  });
});
