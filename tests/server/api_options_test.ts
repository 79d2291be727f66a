/**
 * The options that change what the HTTP API answers, against the real
 * `relay serve` run in-process, once per storage engine (see
 * scenario_support.ts): pools (`Relay-Pool`, `--pool`), strategies, signed
 * responses, and the audit trail with and without `--no-audit`.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  assertEmpty,
  assertJson,
  assertSigned,
  createdBody,
  errorBody,
  extendedBody,
  relayClock,
  type Target,
} from "./http_support.ts";
import { scenario } from "./scenario_support.ts";

/** The license key in a 201 body. */
function leasedKey(body: string): string {
  return JSON.parse(body).license_key;
}

scenario("pools: Relay-Pool header and --pool", async (t, s) => {
  const [prod] = await s.db.add(1, { pool: "prod" });
  const [dev] = await s.db.add(1, { pool: "dev" });
  const prodId = await s.db.poolId("prod");
  const devId = await s.db.poolId("dev");

  await t.step("without --pool", async (t) => {
    await using server = await s.serve([]);

    await t.step("no header: only licenses without a pool, so 410", async () => {
      assertJson(await s.claim(server, "n1"), 410, errorBody("no licenses available"));
    });

    await t.step("Relay-Pool: dev claims the dev license", async () => {
      const before = (await s.db.auditTrail()).length;
      const reply = await s.claim(server, "n1", "dev");
      assertJson(reply, 201, createdBody(dev.certificate, dev.key, relayClock(reply), 60));
      assert.equal(leasedKey(reply.body), dev.key);
      const extended = await s.claim(server, "n1", "dev");
      assertJson(extended, 202, extendedBody(relayClock(extended), 60));
      const node = (await s.db.node("n1")).id;
      const license = await s.db.license(dev.key);
      assert.equal(license.pool_id, devId);
      assert.equal(license.node_id, node);
      assert.deepEqual((await s.db.auditTrail()).slice(before), [
        ["node.activated", "node", node, devId],
        ["license.leased", "license", license.id, devId],
        ["node.heartbeat_ping", "node", node, devId],
        ["license.lease_extended", "license", license.id, devId],
        ["node.heartbeat_ping", "node", node, devId],
      ]);
    });

    await t.step("an unknown pool header: 400", async () => {
      assertJson(await s.claim(server, "n2", "nope"), 400, errorBody("invalid pool header"));
      assertJson(await s.release(server, "n1", "nope"), 400, errorBody("invalid pool header"));
    });

    await t.step("a node leasing in dev claiming in prod: 409", async () => {
      assertJson(
        await s.claim(server, "n1", "prod"),
        409,
        errorBody("failed to claim license due to conflict"),
      );
      assert.equal((await s.db.license(prod.key)).node_id, null);
    });

    await t.step("release with the wrong pool header: 404; the right one: 204", async () => {
      const before = (await s.db.auditTrail()).length;
      assertJson(await s.release(server, "n1", "prod"), 404, errorBody("claim not found"));
      assertJson(await s.release(server, "n1"), 404, errorBody("claim not found"));
      assert.equal((await s.db.license(dev.key)).node_id, (await s.db.node("n1")).id);
      assertEmpty(await s.release(server, "n1", "dev"), 204);
      const node = (await s.db.node("n1")).id;
      const license = (await s.db.license(dev.key)).id;
      assert.deepEqual((await s.db.auditTrail()).slice(before), [
        ["license.released", "license", license, devId],
        ["node.deactivated", "node", node, devId],
      ]);
    });

    await t.step("a node leasing in prod claiming in dev: 409", async () => {
      const reply = await s.claim(server, "n3", "prod");
      assertJson(reply, 201, createdBody(prod.certificate, prod.key, relayClock(reply), 60));
      assertJson(
        await s.claim(server, "n3", "dev"),
        409,
        errorBody("failed to claim license due to conflict"),
      );
      assert.equal((await s.db.license(dev.key)).node_id, null);
      assertEmpty(await s.release(server, "n3", "prod"), 204);
    });
  });

  await t.step("--pool prod", async (t) => {
    await using server = await s.serve(["--pool", "prod"]);

    await t.step("Relay-Pool: dev is 400 unsupported", async () => {
      assertJson(await s.claim(server, "p1", "dev"), 400, errorBody("unsupported pool header"));
      assertJson(
        await s.release(server, "p1", "dev"),
        400,
        errorBody("unsupported pool header"),
      );
    });

    await t.step("no header claims and releases in prod", async () => {
      const before = (await s.db.auditTrail()).length;
      const reply = await s.claim(server, "p1");
      assertJson(reply, 201, createdBody(prod.certificate, prod.key, relayClock(reply), 60));
      assertJson(await s.claim(server, "p2"), 410, errorBody("no licenses available"));
      assertEmpty(await s.release(server, "p1"), 204);
      const node = (await s.db.node("p1")).id;
      const license = (await s.db.license(prod.key)).id;
      assert.deepEqual((await s.db.auditTrail()).slice(before), [
        ["node.activated", "node", node, prodId],
        ["license.leased", "license", license, prodId],
        ["node.heartbeat_ping", "node", node, prodId],
        ["license.denied", "node", (await s.db.node("p2")).id, prodId],
        ["license.released", "license", license, prodId],
        ["node.deactivated", "node", node, prodId],
      ]);
    });

    await t.step("Relay-Pool: prod claims and releases in prod", async () => {
      const reply = await s.claim(server, "p2", "prod");
      assertJson(reply, 201, createdBody(prod.certificate, prod.key, relayClock(reply), 60));
      assertEmpty(await s.release(server, "p2", "prod"), 204);
    });
  });

  await t.step(
    "--pool naming no pool: a warning at start, then claims are 400 invalid pool header",
    async () => {
      await using server = await s.serve(["--pool", "nope"]);
      const warning = JSON.parse(server.lines[0]);
      assert.equal(warning.level, "warn");
      assert.equal(warning.pool, "nope");
      assert.match(warning.msg, /does not exist yet/);
      assertJson(await s.claim(server, "q1"), 400, errorBody("invalid pool header"));
    },
  );
});

scenario("strategies pick the first, last or a random free license", async (t, s) => {
  const files = await s.db.add(3);
  const keys = files.map((file) => file.key);

  /** Two claims, a release, a third claim: the keys each claim got. */
  async function sequence(url: Target): Promise<string[]> {
    const got: string[] = [];
    for (const fp of ["a", "b"]) {
      const reply = await s.claim(url, fp);
      assert.equal(reply.status, 201);
      got.push(leasedKey(reply.body));
    }
    assertEmpty(await s.release(url, "a"), 204);
    const reply = await s.claim(url, "c");
    assert.equal(reply.status, 201);
    got.push(leasedKey(reply.body));
    for (const fp of ["b", "c"]) assertEmpty(await s.release(url, fp), 204);
    return got;
  }

  await t.step("default is fifo", async () => {
    await using server = await s.serve([]);
    assert.deepEqual(await sequence(server), [keys[0], keys[1], keys[0]]);
  });

  await t.step("--strategy fifo", async () => {
    await using server = await s.serve(["--strategy", "fifo"]);
    assert.deepEqual(await sequence(server), [keys[0], keys[1], keys[0]]);
  });

  await t.step("--strategy lifo", async () => {
    await using server = await s.serve(["--strategy", "lifo"]);
    assert.deepEqual(await sequence(server), [keys[2], keys[1], keys[2]]);
  });

  await t.step("RELAY_STRATEGY=lifo", async () => {
    await using server = await s.serve([], { env: { RELAY_STRATEGY: "lifo" } });
    assert.deepEqual(await sequence(server), [keys[2], keys[1], keys[2]]);
  });
});

// The picks are random by design: the engines are not compared reply by reply.
scenario("--strategy rand picks every license, and only these", async (_t, s) => {
  const keys = (await s.db.add(3)).map((file) => file.key);
  await using server = await s.serve(["--strategy", "rand"]);
  const seen = new Map<string, number>();
  for (let i = 0; i < 60; i++) {
    const reply = await s.claim(server, "r");
    assert.equal(reply.status, 201);
    const key = leasedKey(reply.body);
    assert.ok(keys.includes(key), `a license of the pool: ${key}`);
    seen.set(key, (seen.get(key) ?? 0) + 1);
    assertEmpty(await s.release(server, "r"), 204);
  }
  assert.deepEqual([...seen.keys()].sort(), [...keys].sort(), `all seen: ${[...seen]}`);

  const held = new Set<string>();
  for (const fp of ["x", "y", "z"]) {
    const reply = await s.claim(server, fp);
    assert.equal(reply.status, 201);
    held.add(leasedKey(reply.body));
  }
  assert.equal(held.size, 3, "three nodes hold three different licenses");
  assertJson(await s.claim(server, "w"), 410, errorBody("no licenses available"));
}, { compare: false });

scenario("signed responses", async (t, s) => {
  const secret = "s3cret";
  const [file] = await s.db.add(1);

  await t.step("--signing-secret signs every response", async () => {
    await using server = await s.serve(["--signing-secret", secret]);
    const replies = [
      await s.call(server, "GET", "/v1/health"),
      await s.claim(server, "n1"),
      await s.claim(server, "n1"),
      await s.claim(server, "n2"),
      await s.claim(server, "n1", "nope"),
      await s.call(server, "POST", "/v1/nodes/n1"),
      await s.call(server, "GET", "/nope"),
      await s.release(server, "n1"),
      await s.release(server, "n1"),
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
    await using server = await s.serve(["--signing-secret", secret, "--no-heartbeats"]);
    assert.equal((await s.claim(server, "n1")).status, 201);
    const conflict = await s.claim(server, "n1");
    assertJson(conflict, 409, errorBody("failed to claim license due to conflict"));
    await assertSigned(conflict, secret);
    assertEmpty(await s.release(server, "n1"), 204);
  });

  await t.step("RELAY_SIGNING_SECRET", async () => {
    await using server = await s.serve([], { env: { RELAY_SIGNING_SECRET: secret } });
    for (
      const reply of [
        await s.call(server, "GET", "/v1/health"),
        await s.claim(server, "n1"),
        await s.release(server, "n1"),
      ]
    ) {
      await assertSigned(reply, secret);
    }
  });
});

scenario("audit: pooled trail, and --no-audit / RELAY_NO_AUDIT write none", async (t, s) => {
  const [prod] = await s.db.add(1, { pool: "prod" });
  const prodId = await s.db.poolId("prod");

  await t.step("claim, extend, release in a pool", async () => {
    const before = (await s.db.auditTrail()).length;
    await using server = await s.serve([]);
    const created = await s.claim(server, "n1", "prod");
    const createdClock = relayClock(created);
    assertJson(created, 201, createdBody(prod.certificate, prod.key, createdClock, 60));
    assert.equal((await s.claim(server, "n1", "prod")).status, 202);
    const released = await s.release(server, "n1", "prod");
    assertEmpty(released, 204);
    const node = await s.db.node("n1");
    const license = await s.db.license(prod.key);
    assert.deepEqual((await s.db.auditTrail()).slice(before), [
      ["node.activated", "node", node.id, prodId],
      ["license.leased", "license", license.id, prodId],
      ["node.heartbeat_ping", "node", node.id, prodId],
      ["license.lease_extended", "license", license.id, prodId],
      ["node.heartbeat_ping", "node", node.id, prodId],
      ["license.released", "license", license.id, prodId],
      ["node.deactivated", "node", node.id, prodId],
    ]);
    const times = (await s.db.rows<{ created_at: number }>(
      "SELECT created_at FROM audit_logs ORDER BY id",
    )).slice(before).map((row) => row.created_at);
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
      const before = (await s.db.auditTrail()).length;
      await using server = await s.serve([], { global: [...args], env });
      assert.equal(server.startup.audit, false);
      assert.equal((await s.claim(server, "n2", "prod")).status, 201);
      assert.equal((await s.claim(server, "n2", "prod")).status, 202);
      assertEmpty(await s.release(server, "n2", "prod"), 204);
      assert.equal((await s.db.auditTrail()).length, before, "no audit rows");
      const license = await s.db.license(prod.key);
      assert.equal(license.node_id, null);
      assert.equal(license.last_released_at, server.clock.unix());
      const { code } = await server.stop();
      assert.equal(code, 0);
    });
  }
});
