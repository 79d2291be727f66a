/**
 * The ceiling of `scripts/bench.ts`: the least a server can do per request
 * with Relay's durability. A bare `Deno.serve` that answers each request after
 * one SQLite upsert into a table keyed by the path, with Relay's pragmas (WAL,
 * synchronous=FULL, busy_timeout=5000, foreign_keys=ON, temp_store=MEMORY), so each answer costs
 * one fsync'd commit.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-net scripts/bench/ceiling.ts DB_PATH [PORT [SYNCHRONOUS [MODE]]]
 * ```
 *
 * SYNCHRONOUS (default FULL, Relay's) is only for measuring what fsync costs.
 * MODE `single` (default) commits each upsert on its own; `group` runs the
 * upserts that arrive together in one transaction (one fsync), answering each
 * after that commit, the way Relay's group commit does: the ceiling of that
 * design.
 *
 * Prints one JSON line `{"msg":"ceiling listening","port":N}` once it listens;
 * exits on SIGTERM/SIGINT.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { setImmediate } from "node:timers";

const [path, portText, synchronous = "FULL", mode = "single"] = Deno.args;
if (!path || !/^(FULL|NORMAL|OFF)$/.test(synchronous) || !/^(single|group)$/.test(mode)) {
  console.error("usage: ceiling.ts DB_PATH [PORT [FULL|NORMAL|OFF [single|group]]]");
  Deno.exit(2);
}

const db = new DatabaseSync(path);
db.exec("PRAGMA busy_timeout = 5000");
db.exec("PRAGMA journal_mode = WAL");
db.exec("PRAGMA foreign_keys = ON");
db.exec(`PRAGMA synchronous = ${synchronous}`);
db.exec("PRAGMA temp_store = MEMORY");
db.exec(`CREATE TABLE IF NOT EXISTS hits (
  path TEXT PRIMARY KEY,
  method TEXT NOT NULL,
  count INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
)`);
const upsert = db.prepare(
  `INSERT INTO hits (path, method, count, updated_at) VALUES (?, ?, 1, ?)
   ON CONFLICT (path) DO UPDATE
     SET method = excluded.method, count = count + 1, updated_at = excluded.updated_at`,
);

/** Upserts now (single) or in the next group's transaction (group); resolves after the commit. */
const record: (path: string, method: string, now: number) => Promise<void> | void =
  mode === "single"
    ? (path, method, now) => {
      upsert.run(path, method, now);
    }
    : groupCommit();

function groupCommit(): (path: string, method: string, now: number) => Promise<void> {
  let queue: {
    args: [string, string, number];
    resolve: () => void;
    reject: (e: unknown) => void;
  }[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const group = queue;
    queue = [];
    try {
      db.exec("BEGIN IMMEDIATE");
      for (const { args } of group) upsert.run(...args);
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      for (const pending of group) pending.reject(error);
      return;
    }
    for (const pending of group) pending.resolve();
  };
  return (path, method, now) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ args: [path, method, now], resolve, reject });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}

const server = Deno.serve({
  hostname: "127.0.0.1",
  port: Number(portText ?? "0"),
  onListen: ({ port }) => console.log(JSON.stringify({ msg: "ceiling listening", port })),
}, async (request) => {
  const path = new URL(request.url).pathname;
  const now = Math.floor(Date.now() / 1000);
  await record(path, request.method, now);
  return new Response(`{"expires_at":${now + 60},"expires_in":60}\n`, {
    headers: { "Content-Type": "application/json" },
  });
});

const stop = () => {
  server.shutdown().then(() => {
    db.close();
    Deno.exit(0);
  });
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
