/**
 * The storage engines the reliability tests run on, behind one shape: a
 * fresh database (SQLite: a file in a temporary folder; PostgreSQL: a
 * database of its own on the suite's server, see `../postgres.ts`), the
 * `--database` value that names it, licenses added through the real CLI,
 * `relay serve` replicas spawned on it, and a row reader for the assertions.
 *
 * The assertions' SQL is engine-neutral: both engines have the same tables
 * and columns; write `?` placeholders (turned into `$1`, `$2`… for
 * PostgreSQL) and make booleans integers (`CASE WHEN … THEN 1 ELSE 0 END`).
 * SQLite's `free_counts` exists on SQLite only (see {@link BackendDatabase.freeCountsOk}).
 *
 * @module
 */

import {
  FREE_COUNT_MISMATCHES,
  type MintedFile,
  mintFiles,
  query,
  runInProcess,
  type ServerProcess,
  startServer,
  tempDir,
} from "../helpers.ts";
import { testDatabase } from "../postgres.ts";

/** A storage engine. */
export type Backend = "sqlite" | "postgres";

/** Every engine the reliability tests run on, SQLite first. */
export const BACKENDS: readonly Backend[] = ["sqlite", "postgres"];

/**
 * How many `relay serve` replicas a multi-replica test runs on an engine:
 * PostgreSQL is the engine for several replicas; two SQLite processes on one
 * file are covered too, but by the tests written for that.
 */
export function replicasOf(backend: Backend): number {
  return backend === "postgres" ? 3 : 1;
}

/** A value a `?` placeholder takes. */
export type Param = string | number | null;

/** A fresh database on one engine, and what the tests do with it. */
export interface BackendDatabase extends AsyncDisposable {
  backend: Backend;
  /** A temporary folder: license files, and the working folder of every `relay`. */
  dir: string;
  /** What `--database` takes: the SQLite file's path, or the `postgres://` URL. */
  database: string;
  /** Rows of one statement with `?` placeholders, numbers as numbers. */
  rows<T = Record<string, unknown>>(sql: string, ...params: Param[]): Promise<T[]>;
  /** The `n` column of the first row of `sql`, as a number. */
  count(sql: string, ...params: Param[]): Promise<number>;
  /**
   * SQLite: the `free_counts` counters that differ from the free licenses
   * (none when right); PostgreSQL has no such counter: always none.
   */
  freeCountMismatches(): Promise<unknown[]>;
  /** Mints `count` licenses and adds them with the real `relay add` (in-process). */
  add(count: number, options?: { pool?: string }): Promise<MintedFile[]>;
  /** Spawns `relay serve --bind 127.0.0.1 --port 0 --database … ...args` and waits until it listens. */
  serve(args?: string[], env?: Record<string, string>): Promise<ServerProcess>;
  /** Spawns `count` replicas with the same arguments, all at once. */
  replicas(count: number, args?: string[]): Promise<ServerProcess[]>;
}

/** Turns `?` placeholders into PostgreSQL's `$1`, `$2`… (no `?` inside literals here). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** A new, empty database on `backend`; disposing it kills its replicas and removes it. */
export async function backendDatabase(backend: Backend): Promise<BackendDatabase> {
  const folder = await tempDir();
  const servers: ServerProcess[] = [];
  let database: string;
  let rows: BackendDatabase["rows"];
  let close: () => Promise<void>;
  try {
    if (backend === "sqlite") {
      database = `${folder.path}/relay.sqlite`;
      rows = <T>(sql: string, ...params: Param[]) =>
        Promise.resolve(query<T>(database, sql, ...params));
      close = () => Promise.resolve();
    } else {
      const db = await testDatabase();
      database = db.url;
      rows = async <T>(sql: string, ...params: Param[]) =>
        [...await db.sql.unsafe(numbered(sql), params)].map((row) => ({ ...row })) as T[];
      close = async () => await db[Symbol.asyncDispose]();
    }
  } catch (error) {
    await folder[Symbol.asyncDispose]();
    throw error;
  }
  const self: BackendDatabase = {
    backend,
    dir: folder.path,
    database,
    rows,
    async count(sql, ...params) {
      const [row] = await rows<{ n: number | string }>(sql, ...params);
      return Number(row.n);
    },
    freeCountMismatches() {
      return backend === "sqlite" ? rows(FREE_COUNT_MISMATCHES) : Promise.resolve([]);
    },
    async add(count, options = {}) {
      const { publicKey, files } = await mintFiles(folder.path, count);
      const args = ["add", "--public-key", publicKey];
      for (const file of files) args.push("--file", file.path, "--key", file.key);
      if (options.pool) args.push("--pool", options.pool);
      args.push("--database", database);
      const result = await runInProcess(args, { now: new Date(), env: { NO_COLOR: "1" } });
      if (result.code !== 0) throw new Error(`relay add failed: ${result.stderr}`);
      return files;
    },
    async serve(args = [], env) {
      const server = await startServer(["--database", database, ...args], {
        cwd: folder.path,
        env,
      });
      servers.push(server);
      return server;
    },
    replicas(count, args = []) {
      return Promise.all(Array.from({ length: count }, () => self.serve(args)));
    },
    async [Symbol.asyncDispose]() {
      for (const server of servers) await server.stop("SIGKILL");
      try {
        await close();
      } finally {
        await folder[Symbol.asyncDispose]();
      }
    },
  };
  return self;
}
