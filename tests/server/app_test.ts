import assert from "node:assert/strict";
import { createLogger, VERBOSITY } from "../../lib/logger.ts";
import { openStore } from "../../lib/storage/open.ts";
import type { Store } from "../../lib/storage/store.ts";
import { type AppConfig, createHandler } from "../../server/app.ts";
import { startReaper } from "../../server/reaper.ts";
import { verifySignature } from "../../server/signing.ts";
import { auditTrail, query, tempDir } from "../helpers.ts";

const T0 = 1_800_000_000;
const CONFIG: AppConfig = {
  pool: null,
  signingSecret: null,
  policy: { ttl: 60, heartbeats: true, strategy: "fifo" },
};

/** A store with licenses `KEY-1` … `KEY-n` (no pool), a handler on it, and a settable clock. */
async function withApp(
  count: number,
  config: Partial<AppConfig>,
  fn: (app: {
    call: (method: string, path: string, headers?: HeadersInit) => Promise<Response>;
    clock: { seconds: number };
    store: Store;
    path: string;
    logs: string[];
  }) => Promise<void>,
) {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  // Group commit, as `relay serve` opens it.
  const store = await openStore(path, { now: T0, groupCommit: true });
  const clock = { seconds: T0 };
  const logs: string[] = [];
  try {
    await store.transaction(async (tx) => {
      for (let i = 1; i <= count; i++) {
        await tx.insertLicense({
          guid: `lic-${i}`,
          file: new TextEncoder().encode(`file-${i}`),
          key: `KEY-${i}`,
          poolId: null,
          fileIssuedAt: null,
          fileExpiresAt: null,
          expiresAt: null,
        }, T0);
      }
    });
    const handler = await createHandler({
      store,
      config: { ...CONFIG, ...config },
      logger: createLogger({
        verbosity: VERBOSITY.debug,
        json: true,
        write: (line) => logs.push(line),
        now: () => new Date(clock.seconds * 1000),
      }),
      now: () => clock.seconds,
    });
    const call = (method: string, path: string, headers?: HeadersInit) =>
      handler(new Request(`http://relay.test${path}`, { method, headers }));
    await fn({ call, clock, store, path, logs });
  } finally {
    await store.close();
  }
}

Deno.test("handler answers claim, heartbeat and release with the reference Relay's bodies", async () => {
  await withApp(1, {}, async ({ call, clock }) => {
    const created = await call("PUT", "/v1/nodes/node-a");
    assert.equal(created.status, 201);
    assert.equal(created.headers.get("content-type"), "application/json");
    assert.equal(created.headers.get("relay-clock"), String(T0));
    assert.equal(
      await created.text(),
      `{"license_file":"${btoa("file-1")}","license_key":"KEY-1","expires_at":${
        T0 + 60
      },"expires_in":60}\n`,
    );
    clock.seconds += 20;
    const extended = await call("PUT", "/v1/nodes/node-a");
    assert.equal(extended.status, 202);
    assert.equal(await extended.text(), `{"expires_at":${T0 + 80},"expires_in":60}\n`);
    const gone = await call("PUT", "/v1/nodes/node-b");
    assert.equal(gone.status, 410);
    assert.equal(await gone.text(), `{"error":"no licenses available"}\n`);
    const released = await call("DELETE", "/v1/nodes/node-a");
    assert.equal(released.status, 204);
    assert.equal(released.headers.get("content-type"), null);
    assert.equal(await released.text(), "");
    const missing = await call("DELETE", "/v1/nodes/node-a");
    assert.equal(missing.status, 404);
    assert.equal(await missing.text(), `{"error":"claim not found"}\n`);
  });
});

Deno.test("handler gives an expired-but-unreaped lease to the next node and a new lease to its old holder", async () => {
  await withApp(2, {}, async ({ call, clock, path }) => {
    assert.equal((await (await call("PUT", "/v1/nodes/a")).text()).includes("KEY-1"), true);
    assert.equal((await (await call("PUT", "/v1/nodes/b")).text()).includes("KEY-2"), true);
    clock.seconds += 60;
    // Both leases expired and no reaper ran: c gets one instead of 410.
    const c = await call("PUT", "/v1/nodes/c");
    assert.equal(c.status, 201);
    await c.body?.cancel();
    // a's lease expired: it gets a new lease (201 with a license file), never a 202.
    const a = await call("PUT", "/v1/nodes/a");
    assert.equal(a.status, 201);
    assert.match(await a.text(), /"license_file":/);
    // b's license is now taken by c or a: b is told there is none.
    const b = await call("PUT", "/v1/nodes/b");
    assert.equal(b.status, 410);
    await b.body?.cancel();
    const expired = auditTrail(path).filter(([event]) => event === "license.lease_expired");
    assert.equal(expired.length, 2);
    assert.equal(
      query(path, "SELECT count(*) AS n FROM licenses WHERE node_id IS NOT NULL")[0].n,
      2,
    );
  });
});

Deno.test("handler maps pool headers as the reference Relay does", async () => {
  await withApp(1, { pool: "prod" }, async ({ call }) => {
    const unsupported = await call("PUT", "/v1/nodes/a", { "Relay-Pool": "dev" });
    assert.equal(unsupported.status, 400);
    assert.equal(await unsupported.text(), `{"error":"unsupported pool header"}\n`);
    // --pool prod names a pool that does not exist yet.
    const invalid = await call("PUT", "/v1/nodes/a", { "Relay-Pool": "prod" });
    assert.equal(invalid.status, 400);
    assert.equal(await invalid.text(), `{"error":"invalid pool header"}\n`);
  });
});

Deno.test("handler refuses bad routes, methods and fingerprints with JSON 4xx", async () => {
  await withApp(0, {}, async ({ call }) => {
    const cases: [string, string, number, string][] = [
      ["GET", "/nope", 404, `{"error":"not found"}\n`],
      ["PUT", "/v1/nodes/", 404, `{"error":"not found"}\n`],
      ["PUT", "/v1/nodes/a/b", 404, `{"error":"not found"}\n`],
      ["POST", "/v1/nodes/a", 405, `{"error":"method not allowed"}\n`],
      ["DELETE", "/v1/health", 405, `{"error":"method not allowed"}\n`],
      ["PUT", "/v1/nodes/%FF", 400, `{"error":"invalid fingerprint"}\n`],
      ["PUT", "/v1/nodes/a%00b", 400, `{"error":"invalid fingerprint"}\n`],
      ["PUT", `/v1/nodes/${"x".repeat(257)}`, 400, `{"error":"fingerprint too long"}\n`],
      ["PUT", `/v1/nodes/${"x".repeat(256)}`, 410, `{"error":"no licenses available"}\n`],
      ["PUT", "/v1/nodes/a%2Fb", 410, `{"error":"no licenses available"}\n`],
      // Characters, not UTF-16 units: 256 emoji are fine, 257 are not.
      [
        "PUT",
        `/v1/nodes/${encodeURIComponent("😀".repeat(256))}`,
        410,
        `{"error":"no licenses available"}\n`,
      ],
      [
        "PUT",
        `/v1/nodes/${encodeURIComponent("😀".repeat(257))}`,
        400,
        `{"error":"fingerprint too long"}\n`,
      ],
    ];
    for (const [method, path, status, body] of cases) {
      const response = await call(method, path);
      assert.equal(response.status, status, `${method} ${path}`);
      assert.equal(await response.text(), body, `${method} ${path}`);
    }
    const health = await call("GET", "/v1/health");
    assert.equal(health.status, 200);
    assert.equal(await health.text(), "");
  });
});

Deno.test("handler signs every body with the signing secret", async () => {
  await withApp(1, { signingSecret: "s3cret" }, async ({ call }) => {
    for (
      const [method, path] of [["PUT", "/v1/nodes/a"], ["PUT", "/v1/nodes/b"], [
        "DELETE",
        "/v1/nodes/a",
      ], ["GET", "/v1/health"]]
    ) {
      const response = await call(method, path);
      const body = await response.text();
      const header = response.headers.get("relay-signature");
      assert.match(header ?? "", new RegExp(`^t=${T0},v1=[0-9a-f]{64},v2=[0-9a-f]{64}$`));
      const request = { method, path, status: response.status };
      for (const bound of [undefined, request]) {
        const options = { secret: "s3cret", now: T0, request: bound };
        assert.equal(await verifySignature(header, body, options), true);
        assert.equal(await verifySignature(header, body, { ...options, secret: "other" }), false);
        assert.equal(await verifySignature(header, body + " ", options), false);
        assert.equal(await verifySignature(header, body, { ...options, now: T0 + 301 }), false);
      }
      // A header with only v1 does not pass as v2: no downgrade.
      const v1Only = header!.replace(/,v2=[0-9a-f]{64}$/, "");
      assert.equal(await verifySignature(v1Only, body, { secret: "s3cret", now: T0 }), true);
      assert.equal(
        await verifySignature(v1Only, body, { secret: "s3cret", now: T0, request }),
        false,
      );
    }
  });
});

Deno.test("the reaper reaps expired leases on its own with an injected clock", async () => {
  await withApp(3, {}, async ({ call, clock, store, path, logs }) => {
    for (const node of ["a", "b", "c"]) {
      await (await call("PUT", `/v1/nodes/${node}`)).body?.cancel();
    }
    const reaper = startReaper({
      store,
      ttl: 60,
      intervalMs: 3_600_000,
      now: () => clock.seconds,
      logger: createLogger({
        verbosity: VERBOSITY.debug,
        json: true,
        write: (l) => logs.push(l),
        now: () => new Date(),
      }),
    });
    try {
      clock.seconds += 59;
      await (await call("PUT", "/v1/nodes/c")).body?.cancel();
      clock.seconds += 1;
      assert.deepEqual(await reaper.runOnce(), { reaped: 2, pruned: 0 });
      assert.deepEqual(await reaper.runOnce(), { reaped: 0, pruned: 0 });
    } finally {
      await reaper.stop();
    }
    assert.deepEqual(
      query(path, "SELECT n.fingerprint FROM licenses l JOIN nodes n ON n.id = l.node_id"),
      [{ fingerprint: "c" }],
    );
    assert.ok(logs.some((line) => JSON.parse(line).msg === "reaped expired leases"));
  });
});
