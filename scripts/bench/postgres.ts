/**
 * The PostgreSQL server of the benchmark's postgres section: a private one
 * started for the run (`tests/postgres_server.ts`, run as a non-root user),
 * or one the operator names with `--postgres <admin-url>`. Its databases are
 * `relay_bench_<pid>_<name>`, filled by the product's own
 * `relay migrate --from <template.sqlite> --to postgres://…` and copied for
 * each measurement with `CREATE DATABASE … TEMPLATE`.
 *
 * @module
 */

import { connectPostgres, redactUrl } from "../../lib/storage/postgres/connect.ts";
import type { PostgresResult } from "./results.ts";
import { spawnRelay } from "./servers.ts";

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

/** What `tests/postgres_server.ts` gives: a private server and how to stop it. */
interface PrivateServer {
  adminUrl: string;
  stop(): Promise<void>;
}

/**
 * The server at `adminUrl`, or (null) a private server started for the run
 * with `startPostgresServer()` of `tests/postgres_server.ts`.
 */
export async function openBenchPostgres(adminUrl: string | null): Promise<BenchPostgres> {
  let privateServer: PrivateServer | undefined;
  if (adminUrl === null) {
    // The harness module is shared with the test suite.
    const harness = new URL("../../tests/postgres_server.ts", import.meta.url).href;
    const { startPostgresServer } = await import(harness) as {
      startPostgresServer(): Promise<PrivateServer>;
    };
    privateServer = await startPostgresServer();
  }
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
        await privateServer?.stop();
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
