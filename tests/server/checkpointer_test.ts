/**
 * `relay serve` checkpoints in the background: committed pages reach the
 * database file soon after each answer (the checkpointer itself is tested in
 * tests/lib/storage/checkpointer_test.ts).
 */

import assert from "node:assert/strict";
import { addMinted, dbPath, exists, startServer, tempDir } from "../helpers.ts";
import { inMainFile } from "../lib/storage/support.ts";

Deno.test("relay serve checkpoints its commits in the background", async () => {
  await using dir = await tempDir();
  await addMinted(dir.path, 2);
  await using server = await startServer([], { cwd: dir.path });
  const response = await fetch(`${server.url}/v1/nodes/node-a`, { method: "PUT" });
  assert.equal(response.status, 201);
  await response.body?.cancel();
  // The lease is durable in the WAL when answered; the worker copies it into
  // the database file soon after, long before SQLite's 1,000-page checkpoint.
  const deadline = Date.now() + 5_000;
  let found: unknown[] = [];
  while (Date.now() < deadline) {
    try {
      found = inMainFile(dir.path, dbPath(dir.path), "SELECT fingerprint FROM nodes");
    } catch (error) {
      // A copy taken while the worker writes the file can be torn: look again.
      if (!String(error).includes("malformed")) throw error;
    }
    if (found.length > 0) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.deepEqual(found, ["node-a"]);
  const { status, stderr } = await server.stop();
  assert.equal(status.code, 0, stderr);
  assert.equal(await exists(`${dbPath(dir.path)}-wal`), false);
});
