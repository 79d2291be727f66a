/**
 * Graceful shutdown of the real `relay serve` process, on each storage
 * engine: SIGTERM answers the request in flight before the process exits 0,
 * SIGINT stops it promptly, and leases survive a restart. On SQLite the file
 * is also left closed cleanly (an empty WAL, integrity ok): that part is
 * about the SQLite file and runs there only.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { connectPostgres } from "../../lib/storage/postgres/connect.ts";
import { query } from "../helpers.ts";
import {
  assertEmpty,
  assertJson,
  claim,
  createdBody,
  errorBody,
  exists,
  extendedBody,
  relayClock,
  release,
  sleep,
  spawnRelay,
} from "./http_support.ts";
import { scenario, type ScenarioDatabase } from "./scenario_support.ts";

const LOCAL = ["--bind", "127.0.0.1", "--port", "0"];

/** SQLite only: the database closed cleanly, no WAL left with content, integrity ok. */
async function assertClosedCleanly(db: ScenarioDatabase): Promise<void> {
  if (db.backend !== "sqlite") return;
  const wal = `${db.database}-wal`;
  if (await exists(wal)) assert.equal((await Deno.stat(wal)).size, 0, "WAL is empty");
  assert.deepEqual(query(db.database, "PRAGMA integrity_check"), [{ integrity_check: "ok" }]);
}

/**
 * Takes the lock a claim needs and holds it until the returned function is
 * called: SQLite's write lock (`BEGIN IMMEDIATE`), PostgreSQL's lock on the
 * `licenses` table (`LOCK TABLE … ACCESS EXCLUSIVE` in an open transaction).
 */
async function holdLock(db: ScenarioDatabase): Promise<() => Promise<void>> {
  if (db.backend === "sqlite") {
    const blocker = new DatabaseSync(db.database);
    blocker.exec("BEGIN IMMEDIATE");
    return () => {
      blocker.exec("ROLLBACK");
      blocker.close();
      return Promise.resolve();
    };
  }
  const sql = connectPostgres(db.database, { max: 1 });
  const locked = Promise.withResolvers<void>();
  const unlock = Promise.withResolvers<void>();
  const transaction = sql.begin(async (tx) => {
    await tx`LOCK TABLE licenses IN ACCESS EXCLUSIVE MODE`;
    locked.resolve();
    await unlock.promise;
    throw new Error("rolled back on purpose");
  }).catch(() => {});
  await Promise.race([locked.promise, transaction]);
  return async () => {
    unlock.resolve();
    await transaction;
    await sql.end();
  };
}

// The processes run on the real clock: the engines' replies differ in their
// times, so each run is checked on its own rather than compared.
scenario("graceful shutdown", async (t, s) => {
  const [file] = await s.db.add(1);
  // SQLite: the default database of the working folder, as an operator runs it.
  const serve = [
    "serve",
    ...LOCAL,
    ...(s.backend === "sqlite" ? [] : ["--database", s.db.database]),
  ];

  await t.step("SIGTERM: a request in flight is answered, then exit 0", async () => {
    await using server = await spawnRelay(serve, { cwd: s.db.dir });
    // Hold the lock so that the claim is stuck inside the server.
    const unlock = await holdLock(s.db);
    let pending: ReturnType<typeof claim> | undefined;
    try {
      pending = claim(server.url, "n1");
      await sleep(400);
      const stopping = server.stop("SIGTERM");
      await sleep(400);
      assert.equal(
        await Promise.race([stopping.then(() => "exited"), sleep(0).then(() => "running")]),
        "running",
        "the server waits for the request in flight",
      );
    } finally {
      await unlock();
    }
    const reply = await pending!;
    assertJson(reply, 201, createdBody(file.certificate, file.key, relayClock(reply), 60));
    const { status, stdout, stderr } = await server.stop();
    assert.equal(status.code, 0);
    assert.equal(stderr, "");
    const messages = stdout.trimEnd().split("\n").map((line) => JSON.parse(line).msg);
    assert.deepEqual(messages.slice(-2), [
      "relay stopping: finishing requests in flight",
      "relay stopped",
    ]);
    await assertClosedCleanly(s.db);
    const node = await s.db.node("n1");
    assert.deepEqual(await s.db.rows("SELECT node_id FROM licenses"), [{ node_id: node.id }]);
  });

  await t.step("SIGINT: exit 0, leases survive a restart", async () => {
    {
      await using server = await spawnRelay(serve, { cwd: s.db.dir });
      const reply = await claim(server.url, "n1");
      assertJson(reply, 202, extendedBody(relayClock(reply), 60));
      // An idle keep-alive connection does not hold the shutdown up.
      const started = Date.now();
      const { status, stdout, stderr } = await server.stop("SIGINT");
      assert.ok(Date.now() - started < 3000, "stopped promptly");
      assert.equal(status.code, 0);
      assert.equal(stderr, "");
      assert.equal(JSON.parse(stdout.trimEnd().split("\n").at(-1)!).msg, "relay stopped");
    }
    await assertClosedCleanly(s.db);
    await using server = await spawnRelay(serve, { cwd: s.db.dir });
    const reply = await claim(server.url, "n1");
    assertJson(reply, 202, extendedBody(relayClock(reply), 60));
    assertJson(await claim(server.url, "n2"), 410, errorBody("no licenses available"));
    assertEmpty(await release(server.url, "n1"), 204);
    const { status } = await server.stop("SIGTERM");
    assert.equal(status.code, 0);
    await assertClosedCleanly(s.db);
  });
}, { compare: false });
