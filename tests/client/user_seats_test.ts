/**
 * The client SDK holding a user's seat (`/v1/users/{email}`) on a real,
 * spawned relay. Needs the server's user seats (branch `users`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { RelayClient } from "../../lib/client/mod.ts";
import { addMinted, dbPath, query, spawnRelay, tempDir } from "../helpers.ts";
import { ManualTimers, nextEvent, recordEvents } from "./support.ts";

const SECRET = "user-seat-secret";

Deno.test("RelayClient holds a user's seat from two machines, heartbeats and releases it", async () => {
  await using dir = await tempDir();
  const [file] = await addMinted(dir.path, 2, { pool: "prod" });
  await using server = await spawnRelay(
    ["-vvv", "serve", "--bind", "127.0.0.1", "--port", "0", "--signing-secret", SECRET],
    { cwd: dir.path },
  );
  const options = {
    url: server.url,
    user: "Alice@Example.com",
    pool: "prod",
    signingSecret: SECRET,
  };
  const laptopTimers = new ManualTimers();
  const laptop = new RelayClient({ ...options, clock: laptopTimers });
  const claimed = await laptop.claim();
  assert.equal(claimed.licenseId, file.id);
  assert.equal(claimed.licenseFile, file.certificate);
  assert.equal(claimed.pool, "prod");

  // Alice on another machine: the 202 carries the file, no GET needed.
  const desktop = new RelayClient({ ...options, clock: new ManualTimers() });
  const events = recordEvents(desktop);
  const same = await desktop.claim();
  assert.equal(same.licenseId, file.id);
  assert.equal(same.licenseFile, file.certificate);
  assert.deepEqual(events.map(([type]) => type), ["lease"]);
  const requests = server.lines.filter((line) => line.includes('"msg":"request"'));
  assert.ok(requests.every((line) => !line.includes('"method":"GET"')), requests.join("\n"));
  assert.ok(requests.some((line) => line.includes('"path":"/v1/users/Alice%40Example.com"')));

  const heartbeat = nextEvent(laptop, "heartbeat");
  laptopTimers.fire();
  assert.equal((await heartbeat).lease.licenseId, file.id);

  // One seat for Alice, whichever machine; released once.
  const leased = () =>
    query<{ n: number }>(
      dbPath(dir.path),
      "SELECT count(*) AS n FROM licenses WHERE node_id IS NOT NULL",
    )[0].n;
  assert.equal(leased(), 1);
  await laptop.release();
  assert.equal(leased(), 0);
  await desktop.release(); // Already released: a 404 counts as released.
});

Deno.test("RelayClient refuses a user seat that is not an email with a typed error", async () => {
  await using dir = await tempDir();
  await addMinted(dir.path, 1);
  await using server = await spawnRelay(
    ["serve", "--bind", "127.0.0.1", "--port", "0"],
    { cwd: dir.path },
  );
  const client = new RelayClient({ url: server.url, user: "alice", clock: new ManualTimers() });
  await assert.rejects(client.claim(), { code: "rejected", status: 400, message: /invalid email/ });
});
