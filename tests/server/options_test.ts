import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { createLogger } from "../../lib/logger.ts";
import { openStore } from "../../lib/storage/open.ts";
import { startReaper } from "../../server/reaper.ts";
import { verifySignature } from "../../server/signing.ts";
import { addMinted, dbPath, query, runInProcess, startServer, tempDir } from "../helpers.ts";
import { makeCertificates } from "./http_support.ts";
import { FakeClock, serveInProcess } from "./in_process.ts";

Deno.test("relay serve --tls-cert/--tls-key serves HTTPS that a client verifies", async (t) => {
  await using dir = await tempDir();
  const files = await addMinted(dir.path, 1);
  const { ca, cert, key } = await makeCertificates(dir.path);
  using client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(ca)] });

  await t.step("by flags", async () => {
    await using server = await serveInProcess(["--tls-cert", cert, "--tls-key", key], {
      database: dbPath(dir.path),
    });
    assert.equal(server.startup.address, `https://127.0.0.1:${server.port}`);
    const response = await fetch(`https://127.0.0.1:${server.port}/v1/nodes/tls-node`, {
      method: "PUT",
      client,
    });
    assert.equal(response.status, 201);
    assert.equal((await response.json()).license_key, files[0].key);
    // Plain HTTP to the HTTPS port gets no API answer.
    await assert.rejects(fetch(`http://127.0.0.1:${server.port}/v1/health`).then((r) => r.text()));
    assert.equal((await server.stop()).code, 0);
  });

  await t.step("by env vars", async () => {
    await using server = await serveInProcess([], {
      database: dbPath(dir.path),
      env: { RELAY_TLS_CERT: cert, RELAY_TLS_KEY: key },
    });
    const response = await fetch(`https://127.0.0.1:${server.port}/v1/health`, { client });
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });

  await t.step("half a pair, or a key that is not a key, is refused", async () => {
    const env = { RELAY_DATABASE: dbPath(dir.path) };
    const now = new Date();
    const half = await runInProcess(
      ["serve", "--bind", "127.0.0.1", "--port", "0", "--tls-cert", cert],
      { now, env },
    );
    assert.equal(half.code, 2);
    assert.equal(half.stderr, "error: HTTPS needs both --tls-cert and --tls-key\n");
    const bad = await runInProcess(
      ["serve", "--bind", "127.0.0.1", "--port", "0", "--tls-cert", cert, "--tls-key", cert],
      { now, env },
    );
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: Cannot serve HTTPS: [^\n]*\n$/);
  });
});

Deno.test("relay serve --signing-secret-file keeps the secret out of the process list", async (t) => {
  await using dir = await tempDir();
  await addMinted(dir.path, 1);
  const secretFile = `${dir.path}/secret`;
  await Deno.writeTextFile(secretFile, "file-s3cret\n");

  for (
    const [name, args, env] of [
      ["--signing-secret-file", ["--signing-secret-file", secretFile], {}],
      ["RELAY_SIGNING_SECRET_FILE", [], { RELAY_SIGNING_SECRET_FILE: secretFile }],
    ] as const
  ) {
    await t.step(name, async () => {
      await using server = await startServer([...args], { cwd: dir.path, env: { ...env } });
      const response = await fetch(`${server.url}/v1/nodes/n-${name}`, { method: "PUT" });
      const body = await response.text();
      const now = Math.floor(Date.now() / 1000);
      const header = response.headers.get("relay-signature");
      assert.equal(await verifySignature(header, body, { secret: "file-s3cret", now }), true);
      assert.equal(await verifySignature(header, body, { secret: "file-s3cret\n", now }), false);
      const ps = await new Deno.Command("ps", {
        args: ["-o", "args=", "-p", String(server.process.pid)],
        stdout: "piped",
      }).output();
      const cmdline = new TextDecoder().decode(ps.stdout);
      assert.match(cmdline, /serve/, "ps shows the server's command line");
      assert.ok(!cmdline.includes("file-s3cret"), "the secret is not in the command line");
      await fetch(`${server.url}/v1/nodes/n-${name}`, { method: "DELETE" }).then((r) => r.text());
      const { stdout, stderr } = await server.stop();
      assert.ok(!stdout.includes("file-s3cret") && !stderr.includes("file-s3cret"));
    });
  }

  await t.step("a secret and a file, an empty file, a missing file", async () => {
    const base = ["serve", "--bind", "127.0.0.1", "--port", "0"];
    const options = { now: new Date(), env: { RELAY_DATABASE: dbPath(dir.path) } };
    const both = await runInProcess(
      [...base, "--signing-secret", "x", "--signing-secret-file", secretFile],
      options,
    );
    assert.equal(both.code, 2);
    assert.match(both.stderr, /^error: Give the signing secret or a file holding it, not both\n$/);
    await Deno.writeTextFile(`${dir.path}/empty`, "\n");
    const empty = await runInProcess(
      [...base, "--signing-secret-file", `${dir.path}/empty`],
      options,
    );
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /holds no secret/);
    const missing = await runInProcess(
      [...base, "--signing-secret-file", `${dir.path}/nope`],
      options,
    );
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /^error: Cannot read signing secret file "[^"]*nope": no such file\n$/,
    );
  });
});

Deno.test("audit retention prunes old records in the reaper's cycle (injected clock)", async () => {
  await using dir = await tempDir();
  const path = dbPath(dir.path);
  const T0 = 1_800_000_000;
  const store = await openStore(path, { now: T0 });
  try {
    await store.transaction(async (tx) => {
      for (let i = 0; i < 2500; i++) {
        await tx.audit({
          event: 8,
          entity: 2,
          entityId: i,
          poolId: null,
          now: T0 - 40 * 86_400 + i,
        });
      }
      for (let i = 0; i < 10; i++) {
        await tx.audit({ event: 8, entity: 2, entityId: i, poolId: null, now: T0 - 86_400 });
      }
    });
    const reaper = startReaper({
      store,
      ttl: null,
      auditRetention: 30 * 86_400,
      intervalMs: 3_600_000,
      now: () => T0,
      logger: createLogger({ verbosity: 0, json: true, write: () => {}, now: () => new Date() }),
    });
    try {
      assert.deepEqual(await reaper.runOnce(), { reaped: 0, pruned: 2500 });
      assert.deepEqual(await reaper.runOnce(), { reaped: 0, pruned: 0 });
    } finally {
      await reaper.stop();
    }
  } finally {
    await store.close();
  }
  assert.deepEqual(query(path, "SELECT min(created_at) AS oldest, count(*) AS n FROM audit_logs"), [
    { oldest: T0 - 86_400, n: 10 },
  ]);
});

Deno.test("relay serve --audit-retention prunes on its own, also without heartbeats", async () => {
  await using dir = await tempDir();
  await addMinted(dir.path, 1);
  const path = dbPath(dir.path);
  const clock = new FakeClock();
  const db = new DatabaseSync(path);
  const now = clock.unix();
  db.prepare(
    "INSERT INTO audit_logs (event_type_id, entity_type_id, entity_id, created_at) VALUES (8, 2, 1, ?)",
  ).run(now - 31 * 86_400);
  db.close();
  const before = query(path, "SELECT count(*) AS n FROM audit_logs")[0].n as number;

  await using server = await serveInProcess(
    ["--no-heartbeats", "--audit-retention", "30d", "--cull-interval", "100ms"],
    { database: path, clock },
  );
  assert.equal(server.startup.audit_retention, "2592000s");
  const deadline = Date.now() + 10_000;
  while (query(path, "SELECT count(*) AS n FROM audit_logs")[0].n === before) {
    assert.ok(Date.now() < deadline, "old audit records were not pruned within 10 s");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(query(path, "SELECT count(*) AS n FROM audit_logs")[0].n, before - 1);
  assert.equal(
    query(path, "SELECT count(*) AS n FROM audit_logs WHERE created_at < ?", now - 30 * 86_400)[0]
      .n,
    0,
  );

  const short = await runInProcess(["serve", "--audit-retention", "10s"], {
    now: clock.now(),
    env: { RELAY_DATABASE: path },
  });
  assert.equal(short.code, 2);
  assert.equal(short.stderr, "error: Audit retention must be at least 1m\n");
});
