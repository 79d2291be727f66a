/**
 * `relay doctor` on PostgreSQL through the real CLI: a healthy database
 * passes every check (exit 0) and is left as it was; an expired lease no
 * reaper ended, an expiring license and a connection left in a transaction
 * are each reported (exit 1); an empty database is an error and gets no
 * tables; a server out of reach is one line; the URL's password is never
 * printed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type CliResult, mintFiles, runCli, tempDir } from "../helpers.ts";
import { testDatabase } from "../postgres.ts";
import { fileArgs, runRelay } from "./support.ts";

/** The checks in the order doctor prints them on PostgreSQL. */
const NAMES = [
  "server",
  "integrity",
  "foreign keys",
  "schema",
  "writes",
  "sessions",
  "connections",
  "clock",
  "licenses",
  "leases",
  "audit log",
];

/** The report's lines by check name; asserts one line per check, in order. */
function report(stdout: string): Map<string, { status: string; text: string }> {
  const parsed = stdout.trimEnd().split("\n").map((line) => {
    const match = /^(ok|warn|FAIL) {2,4}(.{12}) {2}(.+)$/.exec(line);
    assert.ok(match, `a check line: ${JSON.stringify(line)}`);
    return { status: match[1], name: match[2].trimEnd(), text: match[3] };
  });
  assert.deepEqual(parsed.map((line) => line.name), NAMES);
  return new Map(parsed.map((line) => [line.name, line]));
}

/** Asserts every check but `problems` is ok and the exit code and `error:` line that follow. */
function assertOnly(result: CliResult, problems: Record<string, "warn" | "FAIL">) {
  const lines = report(result.stdout);
  for (const [name, line] of lines) {
    assert.equal(line.status, problems[name] ?? "ok", `${name}: ${line.text}`);
  }
  const count = Object.keys(problems).length;
  if (count === 0) {
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
  } else {
    assert.match(
      result.stderr,
      new RegExp(`^error: ${count} of 11 checks need action \\(.+\\)\\n$`),
    );
    assert.equal(result.code, 1);
  }
  return lines;
}

/** What doctor must leave as it found it: every Relay table's rows, and the tables there are. */
async function snapshot(sql: Awaited<ReturnType<typeof testDatabase>>["sql"]): Promise<unknown> {
  const tables = await sql<{ name: string }[]>`
    SELECT table_name AS "name" FROM information_schema.tables
    WHERE table_schema = current_schema() ORDER BY table_name`;
  const rows: Record<string, unknown> = {};
  for (const { name } of tables) {
    rows[name] = [...await sql.unsafe(`SELECT * FROM "${name}" ORDER BY 1`)];
  }
  return rows;
}

Deno.test("relay doctor passes a healthy PostgreSQL database and changes nothing", async () => {
  await using dir = await tempDir();
  await using db = await testDatabase();
  const { publicKey, files } = await mintFiles(dir.path, 2);
  const added = await runRelay(
    ["--database", db.url, "add", "--public-key", publicKey, ...fileArgs(files)],
    { cwd: dir.path },
  );
  assert.equal(added.code, 0, added.stderr);
  const before = await snapshot(db.sql);

  const result = await runCli(["doctor", "--database", db.url], { cwd: dir.path });
  const lines = assertOnly(result, {});
  assert.match(lines.get("server")!.text, /^PostgreSQL \d+\.\d+.* answered, the primary$/);
  assert.match(lines.get("integrity")!.text, /^every index is valid/);
  assert.equal(lines.get("foreign keys")!.text, "every reference points to an existing row");
  assert.equal(lines.get("schema")!.text, "version 11, this Relay's latest");
  assert.equal(
    lines.get("writes")!.text,
    "the database accepts writes (probed in a transaction rolled back)",
  );
  assert.equal(
    lines.get("sessions")!.text,
    "no connection sits in a transaction or waits for a lock",
  );
  assert.match(
    lines.get("connections")!.text,
    /^\d+ of \d+ connections in use \(\d+ kept for superusers\)$/,
  );
  assert.equal(lines.get("licenses")!.text, "2 licenses, none expires within 7d");
  assert.equal(lines.get("leases")!.text, "no lease is overdue for reaping");
  assert.match(
    lines.get("audit log")!.text,
    /^about \d+ records?, \d+ kB with its indexes, since /,
  );
  // The write probe was rolled back: relay_health holds no row, nothing else changed.
  assert.deepEqual(await snapshot(db.sql), before);

  const json = await runCli(["doctor", "--json", "--database", db.url], { cwd: dir.path });
  assert.equal(json.code, 0, json.stderr);
  const parsed = JSON.parse(json.stdout);
  assert.equal(parsed.database, db.url);
  assert.equal(parsed.healthy, true);
  assert.deepEqual(parsed.checks.map((check: { name: string }) => check.name), NAMES);
});

Deno.test("relay doctor on PostgreSQL reports an expired lease no reaper ended and an expiring license", async () => {
  await using dir = await tempDir();
  await using db = await testDatabase();
  const { publicKey, files: [soon, later] } = await mintFiles(dir.path, 2);
  const now = Math.floor(Date.now() / 1000);
  const added = await runRelay(
    ["--database", db.url, "add", "--public-key", publicKey, ...fileArgs([soon, later])],
    { cwd: dir.path },
  );
  assert.equal(added.code, 0, added.stderr);
  // As a server would have stored them: `soon` ends in 3 days; node-1's lease
  // on `later` ended 5 minutes ago and no reaper ran since.
  await db.sql`UPDATE licenses SET expires_at = ${now + 3 * 86_400} WHERE guid = ${soon.id}`;
  const [node] = await db.sql<{ id: number }[]>`
    INSERT INTO nodes (fingerprint, last_heartbeat_at, lease_expires_at)
    VALUES ('node-1', ${now - 360}, ${now - 300}) RETURNING id`;
  await db.sql`UPDATE licenses SET node_id = ${node.id}, claims = 1 WHERE guid = ${later.id}`;

  const result = await runCli(["doctor", "--database", db.url], { cwd: dir.path });
  const lines = assertOnly(result, { licenses: "warn", leases: "warn" });
  assert.equal(result.stderr, "error: 2 of 11 checks need action (2 warn)\n");
  assert.equal(
    lines.get("licenses")!.text,
    `1 license expires within 7d (${soon.id}); renew them: relay del the old file, ` +
      "relay add the new one (relay ls --expiring 7d lists them)",
  );
  assert.match(
    lines.get("leases")!.text,
    /^1 lease expired over a minute ago and still held \(node-1; the oldest expired at .+Z\); run relay serve: its reaper releases them/,
  );
  // Still held: doctor reaps nothing.
  const [held] = await db.sql<{ nodeId: number | null }[]>`
    SELECT node_id AS "nodeId" FROM licenses WHERE guid = ${later.id}`;
  assert.equal(held.nodeId, node.id);
});

Deno.test("relay doctor on PostgreSQL reports a connection left idle in a transaction", async () => {
  await using dir = await tempDir();
  await using db = await testDatabase();
  const { publicKey, files } = await mintFiles(dir.path, 1);
  const added = await runRelay(
    ["--database", db.url, "add", "--public-key", publicKey, ...fileArgs(files)],
    { cwd: dir.path },
  );
  assert.equal(added.code, 0, added.stderr);
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let pid = 0;
  // A session that locks a license and then sits in its transaction.
  const open = db.sql.begin(async (tx) => {
    pid = (await tx<{ pid: number }[]>`SELECT pg_backend_pid() AS "pid"`)[0].pid;
    await tx`SELECT id FROM licenses FOR UPDATE`;
    await released;
  });
  try {
    // It is reported once it has sat there 10 s: doctor is run until then.
    const deadline = Date.now() + 30_000;
    let result: CliResult;
    do {
      result = await runRelay(["--database", db.url, "doctor"], { cwd: dir.path });
    } while (result.code === 0 && Date.now() < deadline);
    const lines = assertOnly(result, { sessions: "warn" });
    assert.match(
      lines.get("sessions")!.text,
      new RegExp(
        `^1 connection stuck: pid ${pid} \\(relay, [^)]+\\) idle in a transaction for \\d+s; ` +
          "a transaction left open holds its locks: end it with SELECT pg_terminate_backend",
      ),
    );
  } finally {
    release();
    await open;
  }
});

Deno.test("relay doctor on PostgreSQL refuses an empty database and creates no table", async () => {
  await using dir = await tempDir();
  await using db = await testDatabase();
  const result = await runCli(["doctor", "--database", db.url], { cwd: dir.path });
  assert.equal(
    result.stderr,
    `error: Database "${db.url}" is not a Relay database (no tables): run relay serve or relay add first\n`,
  );
  assert.equal(result.stdout, "");
  assert.equal(result.code, 1);
  const tables = await db.sql`
    SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`;
  assert.equal(tables.length, 0);
});

Deno.test("relay doctor on PostgreSQL: a server out of reach is one line; the password is never printed", async () => {
  await using dir = await tempDir();
  await using db = await testDatabase();
  const { publicKey, files } = await mintFiles(dir.path, 1);
  const added = await runRelay(
    ["--database", db.url, "add", "--public-key", publicKey, ...fileArgs(files)],
    { cwd: dir.path },
  );
  assert.equal(added.code, 0, added.stderr);
  const secret = "very-secret-pw";

  const unreachable = await runCli(
    ["doctor", "--database", `postgres://relay:${secret}@127.0.0.1:1/relay`],
    { cwd: dir.path },
  );
  assert.match(unreachable.stderr, /^error: database unavailable: [^\n]+\n$/);
  assert.equal(unreachable.stdout, "");
  assert.equal(unreachable.code, 1);
  assert.ok(!unreachable.stderr.includes(secret), unreachable.stderr);

  // The test server trusts every connection: the password in the URL is sent and ignored.
  const url = new URL(db.url);
  url.username = "postgres";
  url.password = secret;
  for (const args of [["doctor"], ["doctor", "--json"]]) {
    const result = await runCli([...args, "--database", url.href], { cwd: dir.path });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!`${result.stdout}${result.stderr}`.includes(secret), result.stdout);
  }
  const json = await runCli(["doctor", "--json", "--database", url.href], { cwd: dir.path });
  assert.equal(JSON.parse(json.stdout).database, url.href.replace(secret, "***"));
});
