/**
 * The PostgreSQL server of the benchmark's postgres section: a private one
 * started for the run (`pg_server.ts` in a child process: the test suite's
 * `startPostgresServer()` with fsync on), or one the operator names with
 * `--postgres <admin-url>`. Its databases are
 * `relay_bench_<pid>_<name>`, filled by the product's own
 * `relay migrate --from <template.sqlite> --to postgres://…` and copied for
 * each measurement with `CREATE DATABASE … TEMPLATE`.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { connectPostgres, redactUrl } from "../../lib/storage/postgres/connect.ts";
import type { PgServerResult } from "./pg_server.ts";
import { resultOf } from "./plan.ts";
import { exitWithin, spawn, type Spawned } from "./procs.ts";
import type { PostgresResult } from "./results.ts";
import { childEnv, spawnRelay } from "./servers.ts";

const PG_SERVER = fileURLToPath(new URL("./pg_server.ts", import.meta.url));

/** The permissions of `pg_server.ts`. */
export const PG_SERVER_PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-net=127.0.0.1",
  "--allow-sys=uid",
];

/** The server settings the report quotes: durability first. */
const SETTINGS = [
  "fsync",
  "synchronous_commit",
  "full_page_writes",
  "wal_level",
  "shared_buffers",
  "max_connections",
] as const;

/** A PostgreSQL server for one run; `await using` drops its databases and stops a private one. */
export interface BenchPostgres extends AsyncDisposable {
  /** A superuser on the server's `postgres` database. */
  adminUrl: string;
  /** Whether the run started the server (and stops it when disposed). */
  private: boolean;
  /** The URL of the benchmark's database `name` (see {@link createDatabase}). */
  urlOf(name: string): string;
  /** Creates the empty database `name`, or a copy of the database `template`; returns its URL. */
  createDatabase(name: string, template?: string): Promise<string>;
  /** Drops the database `name` (with any connections still on it). */
  dropDatabase(name: string): Promise<void>;
  /** The server's version and the settings of {@link SETTINGS}. */
  describe(): Promise<PostgresResult["server"]>;
}

/** A `pg_server.ts` process and the admin URL of the server it runs. */
interface PrivateServer {
  adminUrl: string;
  process: Spawned;
}

/** Starts `pg_server.ts`; resolves once its server accepts connections (at most 120 s). */
async function startPrivateServer(): Promise<PrivateServer> {
  const process = spawn(Deno.execPath(), ["run", "--quiet", ...PG_SERVER_PERMISSIONS, PG_SERVER], {
    env: childEnv(),
    stdin: "piped",
  });
  try {
    const result = await new Promise<PgServerResult>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error("PostgreSQL did not start in 120 s")),
        120_000,
      );
      process.onStdout = (line) => {
        const result = resultOf<PgServerResult>([line]);
        if (result) {
          clearTimeout(timer);
          resolve(result);
        }
      };
      process.done.then((status) => {
        clearTimeout(timer);
        reject(new Error(`pg_server.ts exited (${status.code}): ${process.stderr.join("\n")}`));
      });
    });
    return { adminUrl: result.adminUrl, process };
  } catch (error) {
    process.kill();
    await process.done;
    throw error;
  }
}

/** Stops a private server: closes the stdin of `pg_server.ts` and waits (at most 60 s). */
async function stopPrivateServer(server: PrivateServer): Promise<void> {
  await server.process.child.stdin.close().catch(() => {});
  await exitWithin(server.process, 60_000);
}

/**
 * The server at `adminUrl`, or (null) a private server started for the run
 * by `pg_server.ts`.
 */
export async function openBenchPostgres(adminUrl: string | null): Promise<BenchPostgres> {
  const privateServer = adminUrl === null ? await startPrivateServer() : undefined;
  const admin = adminUrl ?? privateServer!.adminUrl;
  const sql = connectPostgres(admin, { max: 1, applicationName: "relay-bench" });
  const created = new Set<string>();
  const fullName = (name: string) => `relay_bench_${Deno.pid}_${name}`;
  const urlOf = (name: string) => {
    const url = new URL(admin);
    url.pathname = `/${fullName(name)}`;
    return url.href;
  };
  let versionNum: number | undefined;
  return {
    adminUrl: admin,
    private: privateServer !== undefined,
    urlOf,
    async createDatabase(name, template) {
      versionNum ??= Number((await sql`SHOW server_version_num`)[0].server_version_num);
      // FILE_COPY (PostgreSQL 15+) copies the files instead of WAL-logging every block.
      const copy = template === undefined
        ? ""
        : ` TEMPLATE ${fullName(template)}${versionNum >= 150000 ? " STRATEGY FILE_COPY" : ""}`;
      await sql.unsafe(`CREATE DATABASE ${fullName(name)}${copy}`);
      created.add(name);
      return urlOf(name);
    },
    async dropDatabase(name) {
      await sql.unsafe(`DROP DATABASE IF EXISTS ${fullName(name)} WITH (FORCE)`);
      created.delete(name);
    },
    async describe() {
      const version = String((await sql`SHOW server_version`)[0].server_version);
      const settings: Record<string, string> = {};
      for (const name of SETTINGS) {
        settings[name] = String((await sql.unsafe(`SHOW ${name}`))[0][name]);
      }
      return { version, private: privateServer !== undefined, settings };
    },
    async [Symbol.asyncDispose]() {
      try {
        if (!privateServer) {
          for (const name of created) {
            await sql.unsafe(`DROP DATABASE IF EXISTS ${fullName(name)} WITH (FORCE)`);
          }
        }
      } finally {
        await sql.end();
        if (privateServer) await stopPrivateServer(privateServer);
      }
    },
  };
}

/**
 * Copies the SQLite database `from` into the (empty) PostgreSQL database `to`
 * with `relay migrate`; returns the seconds it took.
 */
export async function migrateInto(from: string, to: string): Promise<number> {
  const t0 = performance.now();
  const migrate = spawnRelay(["migrate", "--from", from, "--to", to], { discardStdout: true });
  const status = await migrate.done;
  if (!status.success) {
    throw new Error(
      `relay migrate --from ${from} --to ${redactUrl(to)} failed (${status.code}): ${
        migrate.stderr.join("\n")
      }`,
    );
  }
  return (performance.now() - t0) / 1000;
}
