/**
 * The background checkpointer: committed pages reach the database file
 * without the server's thread copying them, and a worker that cannot open
 * the database leaves SQLite's own checkpoints in charge.
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { createLogger } from "../../lib/logger.ts";
import { DEFAULT_AUTOCHECKPOINT, openStore } from "../../lib/store.ts";
import { BACKSTOP_AUTOCHECKPOINT, startCheckpointer } from "../../server/checkpointer.ts";
import { addMinted, dbPath, exists, startServer, tempDir } from "../helpers.ts";

const NOW = 1_800_000_000;

function testLogger(lines: string[]) {
  return createLogger({
    verbosity: 2,
    json: true,
    now: () => new Date(0),
    write: (line) => lines.push(line),
  });
}

/** Runs `sql` on a copy of the database file alone, as if its WAL were lost. */
function inMainFile(dir: string, path: string, sql: string): unknown[] {
  const copy = `${dir}/main-file-only.sqlite`;
  Deno.copyFileSync(path, copy);
  const db = new DatabaseSync(copy, { readOnly: true });
  try {
    return db.prepare(sql).all().map((row) => Object.values(row)[0]);
  } finally {
    db.close();
  }
}

Deno.test("the checkpointer copies each commit into the database file from its own thread", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = openStore(path, { now: NOW });
  const lines: string[] = [];
  const checkpointer = startCheckpointer({ store, path, logger: testLogger(lines) });
  try {
    assert.equal(await checkpointer.settled(), null, "nothing asked yet");
    store.transaction(() => store.insertPool("prod", NOW));
    store.transaction(() => store.insertPool("dev", NOW));
    const result = await checkpointer.settled();
    assert.ok(result && result.walFrames > 0, JSON.stringify(result));
    assert.equal(result.checkpointed, result.walFrames, "every frame copied");
    // SQLite alone would leave both commits in the WAL until 1,000 pages.
    assert.deepEqual(inMainFile(dir.path, path, "SELECT name FROM pools ORDER BY name"), [
      "dev",
      "prod",
    ]);

    assert.equal(store.autoCheckpoint, BACKSTOP_AUTOCHECKPOINT);
    await checkpointer.stop();
    assert.equal(store.autoCheckpoint, DEFAULT_AUTOCHECKPOINT, "the default is back");
    store.transaction(() => store.insertPool("qa", NOW));
    assert.equal(await checkpointer.settled(), result, "a stopped checkpointer asks for nothing");
  } finally {
    await checkpointer.stop();
    store.close();
  }
  assert.equal(await exists(`${path}-wal`), false, "closing last removes the WAL");
  assert.deepEqual(lines, []);
});

Deno.test("a checkpointer that cannot open the database warns and leaves SQLite's checkpoints on", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = openStore(path, { now: NOW });
  const lines: string[] = [];
  const checkpointer = startCheckpointer({
    store,
    path: `${dir.path}/missing-folder/relay.sqlite`,
    logger: testLogger(lines),
  });
  try {
    store.transaction(() => store.insertPool("prod", NOW));
    assert.equal(await checkpointer.settled(), null);
    assert.equal(store.autoCheckpoint, DEFAULT_AUTOCHECKPOINT);
    assert.equal(lines.length, 1, lines.join(""));
    const line = JSON.parse(lines[0]);
    assert.equal(line.level, "warn");
    assert.equal(line.msg, "background checkpoint failed; SQLite's own checkpoints continue");
    assert.match(line.error, /Cannot open database ".*missing-folder\/relay.sqlite"/);
    // The store is unaffected.
    store.transaction(() => store.insertPool("dev", NOW));
    assert.equal(store.poolByName("dev")?.name, "dev");
  } finally {
    await checkpointer.stop();
    store.close();
  }
});

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
    found = inMainFile(dir.path, dbPath(dir.path), "SELECT fingerprint FROM nodes");
    if (found.length > 0) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.deepEqual(found, ["node-a"]);
  const { status, stderr } = await server.stop();
  assert.equal(status.code, 0, stderr);
  assert.equal(await exists(`${dbPath(dir.path)}-wal`), false);
});
