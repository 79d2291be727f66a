/**
 * The PostgreSQL server of the test suite, and a fresh database on it per
 * test.
 *
 * `RELAY_TEST_POSTGRES` names the server as an admin URL (a superuser on its
 * `postgres` database). Without it, the suite starts one of its own.
 *
 * @module
 */

import { connectPostgres, type Sql } from "../lib/storage/postgres/connect.ts";
import { type PostgresServer, startPostgresServer } from "./postgres_server.ts";

/** This process's own server, started by the first test that needs one. */
let ownServer: Promise<PostgresServer> | undefined;

/**
 * The admin URL of the suite's server: `RELAY_TEST_POSTGRES` when set (as
 * `deno task test` sets it), else a server of this test process's own,
 * started on first use and stopped when the process exits.
 */
export async function adminUrl(): Promise<string> {
  const url = Deno.env.get("RELAY_TEST_POSTGRES");
  if (url) return url;
  ownServer ??= startPostgresServer().then((server) => {
    // `unload` runs when the test run ends; synchronous, so pg_ctl stop runs before the exit.
    globalThis.addEventListener("unload", () => server.disposeSync());
    return server;
  }, (error) => {
    ownServer = undefined;
    throw error;
  });
  return (await ownServer).adminUrl;
}

/** A database of its own for one test: its URL, and an admin client on it. */
export interface TestDatabase extends AsyncDisposable {
  /** `postgres://…/relay_test_…`, for `--database` or `openStore`. */
  url: string;
  /** A client on that database, for assertions on its rows. */
  sql: Sql;
}

let counter = 0;

/** Creates an empty database; disposing it closes its client and drops it. */
export async function testDatabase(): Promise<TestDatabase> {
  const admin = await adminUrl();
  const name = `relay_test_${Deno.pid}_${++counter}_${crypto.randomUUID().slice(0, 8)}`;
  const server = connectPostgres(admin, { max: 1 });
  try {
    await server.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await server.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  const sql = connectPostgres(url.href, { max: 2 });
  return {
    url: url.href,
    sql,
    async [Symbol.asyncDispose]() {
      await sql.end();
      const server = connectPostgres(admin, { max: 1 });
      try {
        await server.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await server.end();
      }
    },
  };
}
