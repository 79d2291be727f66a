/**
 * The ceiling of `scripts/bench.ts`: the least a server can do per request
 * with Relay's durability. A bare `Deno.serve` that answers each request after
 * one SQLite upsert into a table keyed by the path, with Relay's pragmas (WAL,
 * synchronous=FULL, busy_timeout=5000, foreign_keys=ON, temp_store=MEMORY), so each answer costs
 * one fsync'd commit.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-net scripts/bench/ceiling.ts DB_PATH [PORT [SYNCHRONOUS [MODE]]]
 * deno run scripts/bench/ceiling.ts --help
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

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { setImmediate } from "node:timers";
import { Argument } from "commander";
import { parsePort } from "../../lib/config.ts";
import {
  CONSOLE,
  oneOf,
  type Parsed,
  parseScriptArgs,
  scriptCommand,
  type ScriptOutput,
  usageChecked,
} from "../command_line.ts";

const SYNCHRONOUS = ["FULL", "NORMAL", "OFF"] as const;
const MODES = ["single", "group"] as const;

/** What the ceiling was asked to serve. */
export interface CeilingOptions {
  database: string;
  /** 0: any free port. */
  port: number;
  synchronous: typeof SYNCHRONOUS[number];
  mode: typeof MODES[number];
}

/** Parses the ceiling's command line; prints help or the error through `output`. */
export function parseCeilingArgs(
  args: string[],
  output: ScriptOutput = CONSOLE,
): Parsed<CeilingOptions> {
  const command = scriptCommand(
    "scripts/bench/ceiling.ts",
    "A bare Deno.serve that answers each request after one SQLite upsert: the benchmark's ceiling.",
    output,
  )
    .argument("<database>", "SQLite database file, created if missing")
    .addArgument(
      new Argument("[port]", "port on 127.0.0.1, 0 for any").argParser(usageChecked(parsePort))
        .default(0),
    )
    .addArgument(
      new Argument("[synchronous]", "SQLite synchronous setting")
        .argParser(oneOf(SYNCHRONOUS, "synchronous setting")).default("FULL"),
    )
    .addArgument(
      new Argument("[mode]", "single: each upsert its own commit; group: one commit per group")
        .argParser(oneOf(MODES, "mode")).default("single"),
    );
  return parseScriptArgs(command, args, () => {
    const [database, port, synchronous, mode] = command.processedArgs;
    return { database, port, synchronous, mode };
  });
}

/** Opens the ceiling's database with Relay's pragmas; returns it and its upsert. */
function openCeilingDb(
  options: CeilingOptions,
): { db: DatabaseSync; upsert: StatementSync } {
  const db = new DatabaseSync(options.database);
  db.exec("PRAGMA busy_timeout = 5000");
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA foreign_keys = ON");
  db.exec(`PRAGMA synchronous = ${options.synchronous}`);
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
  return { db, upsert };
}

type Recorder = (path: string, method: string, now: number) => Promise<void> | void;

/** Upserts in the next group's transaction; each call resolves after that commit. */
function groupCommit(db: DatabaseSync, upsert: StatementSync): Recorder {
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

/** Serves until SIGTERM or SIGINT, then closes the database and exits. */
function serve(options: CeilingOptions): void {
  const { db, upsert } = openCeilingDb(options);
  const record: Recorder = options.mode === "single"
    ? (path, method, now) => {
      upsert.run(path, method, now);
    }
    : groupCommit(db, upsert);
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: options.port,
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
}

if (import.meta.main) {
  const parsed = parseCeilingArgs(Deno.args);
  if (parsed.kind === "exit") Deno.exit(parsed.code);
  serve(parsed.options);
}
