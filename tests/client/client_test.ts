/**
 * The client SDK against a real, spawned `relay serve`: claim, heartbeats
 * and release; a relay killed and restarted on the same database mid-lease.
 * Heartbeats are fired by the test (ManualTimers) instead of waited for.
 *
 * @module
 */

import assert from "node:assert/strict";
import { RelayClient } from "../../lib/client/mod.ts";
import {
  addMinted,
  dbPath,
  query,
  sharedKeyPair,
  spawnRelay,
  startServer,
  tempDir,
} from "../helpers.ts";
import { freePort } from "../server/http_support.ts";
import { ManualTimers, nextEvent, recordEvents } from "./support.ts";

const SECRET = "client-test-secret";
const TOKEN = "client-test-token";

Deno.test("RelayClient claims, heartbeats and releases against a signed, authenticated relay", async () => {
  await using dir = await tempDir();
  const [file] = await addMinted(dir.path, 1, { pool: "prod" });
  await Deno.writeTextFile(`${dir.path}/tokens`, `${TOKEN}\n`);
  await using server = await startServer(
    ["--signing-secret", SECRET, "--auth-token-file", "tokens", "--pool", "prod"],
    { cwd: dir.path },
  );
  const timers = new ManualTimers();
  const client = new RelayClient({
    url: server.url,
    fingerprint: "node/1 é",
    pool: "prod",
    token: TOKEN,
    signingSecret: SECRET,
    publicKey: (await sharedKeyPair()).publicKeyText,
    clock: timers,
    random: () => 0.5,
  });
  const events = recordEvents(client);

  const lease = await client.claim();
  assert.equal(client.state, "held");
  assert.equal(client.valid, true);
  assert.equal(lease.licenseId, file.id);
  assert.equal(lease.licenseFile, file.certificate);
  assert.equal(lease.licenseKey, file.key);
  assert.equal(lease.pool, "prod");
  assert.equal(lease.license?.id, file.id);
  assert.equal(lease.license?.algorithm, "aes-256-gcm+ed25519");
  assert.ok(lease.licenseExpires! > Date.now() / 1000 + 29 * 86400);
  // The default TTL is 60 s: the next heartbeat is a third of it away (no jitter at 0.5).
  assert.equal(timers.pending, 1);
  assert.ok(Math.abs(timers.nextAt! - (Date.now() + 20_000)) < 2_000, String(timers.nextAt));

  const heartbeat = nextEvent(client, "heartbeat");
  timers.fire();
  const { lease: extended } = await heartbeat;
  assert.equal(extended.licenseId, file.id);
  assert.ok(extended.expiresAt! >= lease.expiresAt!);
  assert.equal(timers.pending, 1);
  const [row] = query<{ n: number }>(
    dbPath(dir.path),
    "SELECT count(*) AS n FROM licenses WHERE node_id IS NOT NULL",
  );
  assert.equal(row.n, 1);

  await client.release();
  assert.equal(client.state, "released");
  assert.equal(client.valid, false);
  assert.equal(timers.pending, 0);
  const [after] = query<{ n: number }>(
    dbPath(dir.path),
    "SELECT count(*) AS n FROM licenses WHERE node_id IS NOT NULL",
  );
  assert.equal(after.n, 0);
  assert.deepEqual(events.map(([type]) => type), ["lease", "heartbeat", "released"]);
  assert.equal((events[0][1] as { reason: string }).reason, "claimed");
  await client.release(); // A second release is a no-op.
});

Deno.test("RelayClient without a token gets a typed unauthorized error", async () => {
  await using dir = await tempDir();
  await addMinted(dir.path, 1);
  await Deno.writeTextFile(`${dir.path}/tokens`, `${TOKEN}\n`);
  await using server = await startServer(["--auth-token-file", "tokens"], { cwd: dir.path });
  const client = new RelayClient({ url: server.url, fingerprint: "n1", clock: new ManualTimers() });
  await assert.rejects(client.claim(), {
    name: "RelayClientError",
    code: "unauthorized",
    status: 401,
  });
  assert.equal(client.state, "idle");
});

Deno.test("RelayClient keeps its seat while the relay is killed and restarted on the same database", async () => {
  await using dir = await tempDir();
  const files = await addMinted(dir.path, 2);
  const port = freePort();
  const serve = () =>
    spawnRelay(
      ["serve", "--bind", "127.0.0.1", "--port", String(port), "--signing-secret", SECRET],
      { cwd: dir.path },
    );
  const first = await serve();
  const timers = new ManualTimers();
  const client = new RelayClient({
    url: `http://127.0.0.1:${port}`,
    fingerprint: "node-1",
    signingSecret: SECRET,
    clock: timers,
  });
  const events = recordEvents(client);
  const lease = await client.claim();
  assert.equal(lease.licenseId, files[0].id);

  await first.stop("SIGKILL");
  const retry = nextEvent(client, "retry");
  timers.fire();
  const { error } = await retry;
  assert.equal(error.code, "unreachable");
  assert.equal(client.state, "held");
  assert.equal(client.valid, true);

  await using second = await serve();
  assert.equal(second.port, port);
  const heartbeat = nextEvent(client, "heartbeat");
  timers.fire();
  const { lease: kept } = await heartbeat;
  assert.equal(kept.licenseId, files[0].id);
  assert.equal(kept.licenseFile, files[0].certificate);
  assert.equal(client.state, "held");
  assert.deepEqual(events.map(([type]) => type), ["lease", "retry", "heartbeat"]);

  await client.release();
  const [row] = query<{ n: number }>(
    dbPath(dir.path),
    "SELECT count(*) AS n FROM licenses WHERE node_id IS NOT NULL",
  );
  assert.equal(row.n, 0);
});

Deno.test("RelayClient with wait gets the seat another node frees while it waits", async () => {
  await using dir = await tempDir();
  const [file] = await addMinted(dir.path, 1);
  await using server = await spawnRelay(
    ["-vvv", "serve", "--bind", "127.0.0.1", "--port", "0"],
    { cwd: dir.path },
  );
  const taken = await fetch(`${server.url}/v1/nodes/node-a`, { method: "PUT" });
  await taken.body?.cancel();
  assert.equal(taken.status, 201);

  const impatient = new RelayClient({
    url: server.url,
    fingerprint: "node-b",
    clock: new ManualTimers(),
  });
  await assert.rejects(impatient.claim(), { code: "exhausted", status: 410, retryAfter: 60 });

  const client = new RelayClient({
    url: server.url,
    fingerprint: "node-b",
    wait: 30,
    clock: new ManualTimers(),
  });
  const claimed = client.claim();
  // Free the seat once the server says the claim waits for one.
  while (!server.lines.some((line) => line.includes('"claim waiting for a seat"'))) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const freed = await fetch(`${server.url}/v1/nodes/node-a`, { method: "DELETE" });
  await freed.body?.cancel();
  assert.equal(freed.status, 204);
  const lease = await claimed;
  assert.equal(lease.licenseId, file.id);
  await client.release();
});

Deno.test("RelayClient of a restarted application gets its live seat back: 202, then the file by GET", async () => {
  await using dir = await tempDir();
  const [file] = await addMinted(dir.path, 2);
  await using server = await startServer(["--signing-secret", SECRET], { cwd: dir.path });
  const options = { url: server.url, fingerprint: "node-1", signingSecret: SECRET };
  const before = await new RelayClient({ ...options, clock: new ManualTimers() }).claim();
  // The application crashed without releasing; it starts again.
  const client = new RelayClient({ ...options, clock: new ManualTimers() });
  const events = recordEvents(client);
  const lease = await client.claim();
  assert.equal(lease.licenseId, file.id);
  assert.equal(lease.licenseFile, file.certificate);
  assert.ok(lease.expiresAt! >= before.expiresAt!);
  assert.deepEqual(events.map(([type, event]) => [type, (event as { reason: string }).reason]), [
    ["lease", "claimed"],
  ]);
  await client.release();
});
