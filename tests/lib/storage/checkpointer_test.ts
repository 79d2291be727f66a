/**
 * The background checkpointer: committed pages reach the database file
 * without the store's thread copying them, and a worker that cannot open
 * the database leaves SQLite's own checkpoints in charge.
 */

import assert from "node:assert/strict";
import { createLogger, VERBOSITY } from "../../../lib/logger.ts";
import {
  BACKSTOP_AUTOCHECKPOINT,
  DEFAULT_AUTOCHECKPOINT,
  startCheckpointer,
} from "../../../lib/storage/sqlite/checkpointer.ts";
import { openSqliteStore } from "../../../lib/storage/sqlite/sqlite_store.ts";
import { exists, tempDir } from "../../helpers.ts";
import { inMainFile } from "./support.ts";

const NOW = 1_800_000_000;

function testLogger(lines: string[]) {
  return createLogger({
    verbosity: VERBOSITY.debug,
    json: true,
    now: () => new Date(0),
    write: (line) => lines.push(line),
  });
}

Deno.test("a store with background checkpoints copies each commit into the database file from another thread", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const lines: string[] = [];
  const store = openSqliteStore(path, {
    now: NOW,
    backgroundCheckpoints: { logger: testLogger(lines) },
  });
  try {
    assert.equal(await store.checkpointsSettled(), null, "nothing asked yet");
    await store.transaction((tx) => tx.insertPool("prod", NOW));
    await store.transaction((tx) => tx.insertPool("dev", NOW));
    const result = await store.checkpointsSettled();
    assert.ok(result && result.walFrames > 0, JSON.stringify(result));
    assert.equal(result.checkpointed, result.walFrames, "every frame copied");
    // SQLite alone would leave both commits in the WAL until 1,000 pages.
    assert.deepEqual(inMainFile(dir.path, path, "SELECT name FROM pools ORDER BY name"), [
      "dev",
      "prod",
    ]);
    assert.equal(store.autoCheckpoint, BACKSTOP_AUTOCHECKPOINT);
  } finally {
    await store.close();
  }
  assert.equal(await exists(`${path}-wal`), false, "closing last removes the WAL");
  assert.deepEqual(lines, []);
});

Deno.test("a stopped checkpointer gives SQLite's checkpoints back and asks for nothing", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = openSqliteStore(path, { now: NOW });
  const settings: number[] = [];
  const lines: string[] = [];
  const checkpointer = startCheckpointer({
    path,
    setAutoCheckpoint: (pages) => settings.push(pages),
    logger: testLogger(lines),
  });
  try {
    await store.transaction((tx) => tx.insertPool("prod", NOW));
    checkpointer.request();
    const result = await checkpointer.settled();
    assert.ok(result && result.checkpointed === result.walFrames, JSON.stringify(result));
    await checkpointer.stop();
    assert.deepEqual(settings, [BACKSTOP_AUTOCHECKPOINT, DEFAULT_AUTOCHECKPOINT]);
    checkpointer.request();
    assert.equal(await checkpointer.settled(), result, "a stopped checkpointer asks for nothing");
  } finally {
    await checkpointer.stop();
    await store.close();
  }
  assert.deepEqual(lines, []);
});

Deno.test("a checkpointer that cannot open the database warns and leaves SQLite's checkpoints on", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = openSqliteStore(path, { now: NOW });
  const settings: number[] = [];
  const lines: string[] = [];
  const checkpointer = startCheckpointer({
    path: `${dir.path}/missing-folder/relay.sqlite`,
    setAutoCheckpoint: (pages) => settings.push(pages),
    logger: testLogger(lines),
  });
  try {
    checkpointer.request();
    assert.equal(await checkpointer.settled(), null);
    assert.deepEqual(settings, [DEFAULT_AUTOCHECKPOINT]);
    assert.equal(lines.length, 1, lines.join(""));
    const line = JSON.parse(lines[0]);
    assert.equal(line.level, "warn");
    assert.equal(line.msg, "background checkpoint failed; SQLite's own checkpoints continue");
    assert.match(line.error, /Cannot open database ".*missing-folder\/relay.sqlite"/);
    // The store is unaffected.
    await store.transaction((tx) => tx.insertPool("dev", NOW));
    assert.equal((await store.read((tx) => tx.poolByName("dev")))?.name, "dev");
    assert.equal(store.autoCheckpoint, DEFAULT_AUTOCHECKPOINT);
  } finally {
    await checkpointer.stop();
    await store.close();
  }
});
