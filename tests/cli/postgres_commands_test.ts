/**
 * Every command on PostgreSQL, as the user sees it: the same command
 * sequence against a SQLite file and a PostgreSQL database prints the same
 * output and exits the same; the password comes from the URL, the password
 * file or `PGPASSWORD` (proved against a server that asks for it) and is
 * never printed; `--pragma` is refused; an unreachable server is one line.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { connectPostgres } from "../../lib/storage/postgres/connect.ts";
import { type CliResult, mintFiles, runCli, spawnRelay, tempDir } from "../helpers.ts";
import { type TestDatabase, testDatabase } from "../postgres.ts";
import { startPostgresServer } from "../postgres_server.ts";
import { fileArgs, lease, runRelay } from "./support.ts";

/** One moment for every run, so both engines record the same times. */
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const NOW_SECONDS = NOW.getTime() / 1000;

/** `relay …` against `database`, with every mention of it replaced by `<db>`. */
async function relayOn(
  database: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<CliResult> {
  const result = await runRelay(["--database", database, ...args], { ...options, now: NOW });
  const named = (text: string) => text.replaceAll(database, "<db>");
  return { code: result.code, stdout: named(result.stdout), stderr: named(result.stderr) };
}

/** Makes node-1 hold license `guid` on SQLite, as a server would, until ten minutes from {@link NOW}. */
function leaseOnSqlite(path: string, guid: string): Promise<void> {
  lease(path, guid, "node-1", {
    heartbeatAt: NOW_SECONDS,
    claimedAt: NOW_SECONDS,
    expiresAt: NOW_SECONDS + 600,
  });
  return Promise.resolve();
}

/** {@link leaseOnSqlite} on PostgreSQL. */
async function leaseOnPostgres(pg: TestDatabase, guid: string): Promise<void> {
  const [node] = await pg.sql`
    INSERT INTO nodes (fingerprint, last_heartbeat_at, lease_expires_at)
    VALUES ('node-1', ${NOW_SECONDS}, ${NOW_SECONDS + 600}) RETURNING id`;
  const changed = await pg.sql`
    UPDATE licenses SET node_id = ${node.id}, claims = 1, last_claimed_at = ${NOW_SECONDS}
    WHERE guid = ${guid}`;
  assert.equal(changed.count, 1);
}

Deno.test("every command prints the same on SQLite and on PostgreSQL", async () => {
  await using dir = await tempDir();
  await using pg = await testDatabase();
  const sqlite = join(dir.path, "relay.sqlite");
  const { publicKey, files } = await mintFiles(dir.path, 3, { maxMachines: 2 });
  const [a, b, c] = files;

  /** The command sequence; `leaseOn` makes node-1 hold license a, as a server would. */
  async function session(database: string, leaseOn: () => Promise<void>): Promise<CliResult[]> {
    const run = (args: string[]) => relayOn(database, args, { cwd: dir.path });
    const results: CliResult[] = [];
    // Commands that only read refuse a database that does not exist yet.
    results.push(await run(["ls"]));
    results.push(
      await run(["add", "--public-key", publicKey, ...fileArgs([a, b]), "--pool", "p1"]),
    );
    results.push(
      await run(["add", "--public-key", publicKey, ...fileArgs([c]), "--seats", "2"]),
    );
    await leaseOn();
    for (
      const args of [
        ["ls", "--plain"],
        ["ls", "--json"],
        ["ls", "--pool", "p1", "--json"],
        ["ls", "--expiring", "3650d", "--json"],
        ["stat", "--license", a.id, "--json"],
        ["stat", "--license", c.id, "--plain"],
        ["stat", "--license", "no-such-license"],
        ["leases", "--json"],
        ["leases", "--plain"],
        ["del", "--license", a.id],
        ["release", "--node", "node-1"],
        ["release", "--node", "node-1"],
        ["del", "--license", a.id],
        ["audit", "--json"],
        ["audit", "--plain", "--pool", "p1"],
        ["audit", "--csv", "--event", "license.added"],
        ["__complete", "pools"],
        ["ls", "--json"],
      ]
    ) {
      results.push(await run(args));
    }
    return results;
  }

  const onSqlite = await session(sqlite, () => leaseOnSqlite(sqlite, a.id));
  const onPostgres = await session(pg.url, () => leaseOnPostgres(pg, a.id));
  assert.equal(onPostgres.length, onSqlite.length);
  // The first refusal names what is missing in each engine's words.
  assert.equal(onPostgres[0].code, 1);
  assert.equal(onSqlite[0].stderr, 'error: Cannot open database "<db>": no such file\n');
  assert.match(onPostgres[0].stderr, /^error: Database "<db>" is not a Relay database/);
  for (const [i, expected] of onSqlite.entries()) {
    if (i > 0) assert.deepEqual(onPostgres[i], expected, `command ${i + 1}`);
  }
  // The sequence did what it says: the comparison is not between two failures.
  assert.deepEqual(
    onSqlite.map((result) => result.code),
    [1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0],
  );
  assert.match(onSqlite[12].stderr, /leased/, "del refuses a leased license");
  assert.equal(JSON.parse(onSqlite[10].stdout).leases.length, 1, "node-1's lease");
  assert.equal(JSON.parse(onSqlite[20].stdout).length, 2, "b and c are left");
  assert.equal(onSqlite[19].stdout, "p1\n");
});

// The reference's cmd_add, cmd_add_pooled, cmd_ls_pooled, cmd_del, cmd_del_pooled and cmd_stat
// scenarios, with the refusals around them, that the sequence above leaves out.
Deno.test("the reference add, ls, stat and del scenarios print the same on both engines", async () => {
  await using dir = await tempDir();
  await using pg = await testDatabase();
  const sqlite = join(dir.path, "relay.sqlite");
  const { publicKey, files } = await mintFiles(dir.path, 2);
  const [prod, dev] = files;

  async function session(database: string, leaseOn: () => Promise<void>): Promise<CliResult[]> {
    const run = (args: string[]) => relayOn(database, args, { cwd: dir.path });
    const results: CliResult[] = [];
    const add = (file: typeof prod, pool: string) =>
      run(["add", "--public-key", publicKey, ...fileArgs([file]), "--pool", pool]);
    results.push(await add(prod, "prod"), await add(dev, "dev"), await add(prod, "prod"));
    for (
      const args of [
        ["ls", "--plain"],
        ["ls", "--pool", "prod", "--plain"],
        ["ls", "--pool", "dev", "--plain"],
        ["ls", "--pool", "nonexistent", "--plain"],
        ["stat", "--license", prod.id, "--plain"],
        ["stat", "--license", "no-such-license", "--plain"],
        ["del", "--license", "no-such-license"],
      ]
    ) {
      results.push(await run(args));
    }
    await leaseOn();
    for (
      const args of [
        ["del", "--license", dev.id],
        ["del", "--license", dev.id, "--force"],
        ["del", "--license", prod.id],
        ["ls", "--pool", "prod", "--plain"],
        ["ls", "--plain"],
        ["ls", "--json"],
        ["stat", "--license", prod.id],
        ["audit", "--json"],
      ]
    ) {
      results.push(await run(args));
    }
    return results;
  }

  const onSqlite = await session(sqlite, () => leaseOnSqlite(sqlite, dev.id));
  const onPostgres = await session(pg.url, () => leaseOnPostgres(pg, dev.id));
  assert.deepEqual(onPostgres, onSqlite);
  // What the reference expects, so that the comparison is not between two wrong answers.
  assert.deepEqual(
    onSqlite.map((result) => result.code),
    [0, 0, 1, 0, 0, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0],
  );
  const out = onSqlite.map((result) => result.stdout);
  const err = onSqlite.map((result) => result.stderr);
  assert.match(err[2], /^error: license with the provided key already exists/);
  assert.ok(out[3].includes(prod.id) && out[3].includes(dev.id), "ls lists both");
  assert.ok(out[4].includes(prod.id) && !out[4].includes(dev.id), "ls --pool prod");
  assert.ok(out[5].includes(dev.id) && !out[5].includes(prod.id), "ls --pool dev");
  assert.match(err[6], /^error: pool not found/);
  assert.ok(out[7].includes(prod.id), "stat --plain");
  assert.match(err[10], /leased/, "del refuses a leased license");
  assert.match(out[11], /license deleted successfully/);
  assert.match(out[12], /license deleted successfully/);
  assert.match(out[13], /license pool is empty/);
  assert.match(out[14], /license pool is empty/);
});

Deno.test("the database password: URL, then file, then PGPASSWORD, never printed", async (t) => {
  await using server = await startPostgresServer();
  const password = "pw-Secret-4711";
  const admin = connectPostgres(server.adminUrl, { max: 1 });
  try {
    await admin.unsafe(`CREATE ROLE relay_pw LOGIN PASSWORD '${password}'`);
    await admin.unsafe("CREATE DATABASE relay_pw OWNER relay_pw");
    // The role must give its password (first match wins); postgres stays trusted.
    const hba = join(server.dataDir, "pg_hba.conf");
    const rules = await Deno.readTextFile(hba);
    await Deno.writeTextFile(
      hba,
      `host all relay_pw 127.0.0.1/32 scram-sha-256\nhost all relay_pw ::1/128 scram-sha-256\n${rules}`,
    );
    await admin.unsafe("SELECT pg_reload_conf()");
  } finally {
    await admin.end();
  }
  await using dir = await tempDir();
  const url = `postgres://relay_pw@127.0.0.1:${server.port}/relay_pw`;
  const withPassword = (secret: string) =>
    `postgres://relay_pw:${encodeURIComponent(secret)}@127.0.0.1:${server.port}/relay_pw`;
  await Deno.writeTextFile(join(dir.path, "right.txt"), `${password}\n`);
  await Deno.writeTextFile(join(dir.path, "wrong.txt"), "wrong-file-pw\n");
  const { publicKey, files } = await mintFiles(dir.path, 1);
  const secrets = [password, encodeURIComponent(password), "wrong-file-pw", "wrong-env-pw"];
  const run = async (args: string[], env: Record<string, string> = {}) => {
    const result = await runRelay(args, { cwd: dir.path, env });
    for (const secret of secrets) {
      assert.ok(!result.stdout.includes(secret), `${secret} in ${result.stdout}`);
      assert.ok(!result.stderr.includes(secret), `${secret} in ${result.stderr}`);
    }
    return result;
  };

  await t.step("without one the server refuses: exit 1", async () => {
    const result = await run(["--database", url, "ls"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: /);
  });

  await t.step("PGPASSWORD", async () => {
    const added = await run(
      ["--database", url, "add", "--public-key", publicKey, ...fileArgs(files)],
      { PGPASSWORD: password },
    );
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.stdout, `license added successfully: ${files[0].id}\n`);
  });

  await t.step("--database-password-file, its line break left out, over PGPASSWORD", async () => {
    for (
      const [args, env] of [
        [["--database-password-file", "right.txt"], { PGPASSWORD: "wrong-env-pw" }],
        [[], { RELAY_DATABASE_PASSWORD_FILE: "right.txt", PGPASSWORD: "wrong-env-pw" }],
      ] as const
    ) {
      const result = await run([...args, "--database", url, "ls", "--json"], env);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(JSON.parse(result.stdout)[0].id, files[0].id);
    }
  });

  await t.step("the URL's password over the file", async () => {
    const result = await run(
      ["--database-password-file", "wrong.txt", "--database", withPassword(password), "ls"],
    );
    assert.equal(result.code, 0, result.stderr);
  });

  await t.step("wrong passwords fail without showing them, at any verbosity", async () => {
    for (
      const [args, env] of [
        [["--database", withPassword("wrong-env-pw")], {}],
        [["--database-password-file", "wrong.txt", "--database", url], {}],
        [["--database", url], { PGPASSWORD: "wrong-env-pw" }],
        [["-vvvv", "--database", withPassword("wrong-env-pw")], {}],
      ] as const
    ) {
      const result = await run([...args, "ls"], env);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /password authentication failed/);
    }
  });

  await t.step("a missing password file: exit 1 naming it", async () => {
    const result = await run(["--database-password-file", "nope.txt", "--database", url, "ls"]);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      'error: Cannot read database password file "nope.txt": no such file\n',
    );
  });

  await t.step("relay serve logs the URL without its password", async () => {
    await using relay = await spawnRelay(
      [
        "serve",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "-vvvv",
        "--database",
        withPassword(password),
      ],
      { cwd: dir.path },
    );
    assert.equal(
      relay.startup.database,
      `postgres://relay_pw:***@127.0.0.1:${server.port}/relay_pw`,
    );
    const { stdout, stderr } = await relay.stop();
    assert.ok(!stdout.includes(password) && !stderr.includes(password), stdout);
    assert.ok(stdout.includes('"database":"postgres://relay_pw:***@'), "the debug settings line");
  });
});

Deno.test("PostgreSQL refusals: --pragma, backup, doctor, an empty database, a server out of reach", async (t) => {
  await using dir = await tempDir();
  await using pg = await testDatabase();
  const run = (args: string[]) => runRelay(args, { cwd: dir.path });

  await t.step("--pragma applies to SQLite only: a usage error", async () => {
    const result = await run(["--database", pg.url, "--pragma", "cache_size=-20000", "ls"]);
    assert.equal(result.code, 2);
    assert.equal(
      result.stderr,
      "error: --pragma applies to SQLite only, not to a PostgreSQL database\n",
    );
  });

  await t.step("commands that only read create no tables", async () => {
    for (const command of [["ls"], ["stat", "--license", "x"], ["leases"], ["audit"]]) {
      const result = await run(["--database", pg.url, ...command]);
      assert.equal(result.code, 1, command.join(" "));
      assert.match(result.stderr, /is not a Relay database \(no tables\)/);
    }
    const complete = await run(["--database", pg.url, "__complete", "pools"]);
    assert.deepEqual([complete.code, complete.stdout, complete.stderr], [0, "", ""]);
    const tables = await pg.sql`
      SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`;
    assert.deepEqual([...tables], []);
  });

  await t.step("backup and doctor name the database without its password", async () => {
    const url = new URL(pg.url);
    url.password = "hidden-pw-123";
    for (const command of [["backup", "--to", "copy.sqlite"], ["doctor"]]) {
      const result = await run(["--database", url.href, ...command]);
      assert.equal(result.code, 1);
      assert.ok(result.stderr.includes("postgres://postgres:***@"), result.stderr);
      assert.ok(!result.stderr.includes("hidden-pw-123"), result.stderr);
    }
  });

  await t.step("a server out of reach: one line, exit 1, the password never shown", async () => {
    const started = Date.now();
    const result = await runCli(
      ["--database", "postgres://relay:very-secret-pw@127.0.0.1:1/relay", "ls"],
      { cwd: dir.path },
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: database unavailable: [^\n]+\n$/);
    assert.ok(!result.stderr.includes("very-secret-pw"));
    assert.ok(Date.now() - started < 30_000);
  });
});
