/**
 * What the client tells the application when its license changes or is
 * lost, against `relay serve` run in-process on a FakeClock that the test
 * moves (no waiting for a lease to expire): a lease taken by another node
 * after it ran out, a `201` on a heartbeat, a renewed file.
 *
 * @module
 */

import assert from "node:assert/strict";
import { RelayClient } from "../../lib/client/mod.ts";
import { dbPath, mintFiles, runInProcess, sharedKeyPair, tempDir } from "../helpers.ts";
import { mintLicenseFile } from "../../scripts/mint.ts";
import { type InProcessServer, serveInProcess } from "../server/in_process.ts";
import { ManualTimers, nextEvent, recordEvents } from "./support.ts";

/** Adds license files to the database of `dir` with the CLI, at `now`. */
async function add(dir: string, files: { path: string; key: string }[], now: Date): Promise<void> {
  const args = ["add", "--public-key", (await sharedKeyPair()).publicKeyText];
  for (const file of files) args.push("--file", file.path, "--key", file.key);
  const result = await runInProcess([...args, "--database", dbPath(dir)], { now });
  assert.equal(result.code, 0, result.stderr);
}

/** A client of `server` whose clock is the server's FakeClock and whose timers the test fires. */
function clientOf(server: InProcessServer, fingerprint: string) {
  const timers = new ManualTimers(() => server.clock.unix() * 1000);
  const client = new RelayClient({
    url: server.url,
    fingerprint,
    publicKey: undefined,
    clock: timers,
    random: () => 0.5,
    fetch: (input, init) => fetch(input, { ...init, client: server.client }),
  });
  return { client, timers };
}

Deno.test("RelayClient reports the loss of a lease another node took after it ran out, then reclaims", async () => {
  await using dir = await tempDir();
  const { files } = await mintFiles(dir.path, 1);
  await add(dir.path, files, new Date());
  await using server = await serveInProcess(["--ttl", "60s"], { database: dbPath(dir.path) });
  const { client, timers } = clientOf(server, "node-1");
  const events = recordEvents(client);
  const lease = await client.claim();
  assert.equal(lease.validUntil, (server.clock.unix() + 60) * 1000);

  // The node stalls past its lease; another node takes the license.
  server.clock.advance(61);
  assert.equal(client.valid, false);
  const other = await fetch(`${server.url}/v1/nodes/node-2`, {
    method: "PUT",
    client: server.client,
  });
  assert.equal(other.status, 201);
  await other.body?.cancel();

  const lost = nextEvent(client, "lost");
  const retry = nextEvent(client, "retry");
  timers.fire();
  assert.deepEqual(await lost, { lease, reason: "expired", error: null });
  const { error } = await retry;
  assert.equal(error.code, "exhausted");
  assert.equal(error.status, 410);
  assert.equal(client.state, "lost");
  assert.equal(client.valid, false);

  // Once the seat is free again, the client's next try gets it back.
  const freed = await fetch(`${server.url}/v1/nodes/node-2`, {
    method: "DELETE",
    client: server.client,
  });
  assert.equal(freed.status, 204);
  const reclaimed = nextEvent(client, "lease");
  timers.fire();
  const event = await reclaimed;
  assert.equal(event.reason, "reclaimed");
  assert.equal(event.lease.licenseId, files[0].id);
  assert.equal(client.state, "held");
  assert.equal(client.valid, true);
  assert.deepEqual(events.map(([type]) => type), ["lease", "lost", "retry", "lease"]);
  await client.release();
});

Deno.test("RelayClient reports a lease lost while the relay is unreachable at the last acknowledged expiry", async () => {
  await using dir = await tempDir();
  const { files } = await mintFiles(dir.path, 1);
  await add(dir.path, files, new Date());
  const server = await serveInProcess(["--ttl", "60s"], { database: dbPath(dir.path) });
  const { client, timers } = clientOf(server, "node-1");
  const lease = await client.claim();
  await server.stop();

  const delays: number[] = [];
  client.on("retry", ({ error, delayMs }) => {
    assert.equal(error.code, "unreachable");
    delays.push(delayMs);
  });
  const lost = nextEvent(client, "lost");
  // Retries with backoff, never sleeping past the lease's end.
  while (client.state === "held") {
    const retry = nextEvent(client, "retry");
    server.clock.advanceTo(Math.ceil(timers.fire() / 1000));
    await Promise.race([retry, lost]);
  }
  assert.equal((await lost).reason, "expired");
  assert.ok(server.clock.unix() >= lease.expiresAt!, `${server.clock.unix()} ${lease.expiresAt}`);
  assert.ok(
    server.clock.unix() <= lease.expiresAt! + 1,
    `${server.clock.unix()} ${lease.expiresAt}`,
  );
  assert.ok(delays.length >= 3, String(delays));
  assert.ok(delays[1] > delays[0], String(delays));
  await client.release().catch(() => {});
});

Deno.test("RelayClient reports a 201 on a heartbeat (another license) and a renewed file", async (t) => {
  await using dir = await tempDir();
  const now = new Date();
  // The first file expires in an hour, the second in 30 days.
  const { files: [short] } = await mintFiles(dir.path, 1, { ttl: 3600 });
  const { files: [long] } = await mintFiles(dir.path, 1);
  await add(dir.path, [short, long], now);
  await using server = await serveInProcess(["--ttl", "2h"], { database: dbPath(dir.path) });
  const { client, timers } = clientOf(server, "node-1");
  const first = await client.claim();
  assert.equal(first.licenseId, short.id);

  await t.step("a heartbeat after the file expired gets another license", async () => {
    server.clock.advance(3601);
    const changed = nextEvent(client, "lease");
    timers.fire();
    const event = await changed;
    assert.equal(event.reason, "reassigned");
    assert.equal(event.previous, first);
    assert.equal(event.lease.licenseId, long.id);
    assert.equal(event.lease.licenseFile, long.certificate);
    assert.equal(client.state, "held");
  });

  await t.step("a heartbeat after the file was renewed fetches the new file", async () => {
    const renewed = await mintLicenseFile(await sharedKeyPair(), {
      id: long.id,
      key: long.key,
      issued: new Date(server.clock.unix() * 1000),
      ttl: 60 * 86400,
      entitlements: ["PRO"],
    });
    const path = `${dir.path}/renewed.lic`;
    await Deno.writeTextFile(path, renewed.certificate);
    await add(dir.path, [{ path, key: long.key }], server.clock.now());
    server.clock.advance(60);
    const changed = nextEvent(client, "lease");
    timers.fire();
    const event = await changed;
    assert.equal(event.reason, "renewed");
    assert.equal(event.lease.licenseId, long.id);
    assert.equal(event.lease.licenseFile, renewed.certificate);
    assert.ok(event.lease.licenseExpires! > event.previous!.licenseExpires!);
    // A later heartbeat is a plain one again.
    const heartbeat = nextEvent(client, "heartbeat");
    timers.fire();
    assert.equal((await heartbeat).lease.licenseFile, renewed.certificate);
  });
  await client.release();
});
