/**
 * `relay doctor` through the real CLI: a healthy database passes every check
 * (exit 0); each problem, produced for real on a real file, gives its line
 * and exit 1; the database is never created or changed; `--json` for
 * scripts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { MIGRATIONS } from "../../lib/storage/sqlite/schema.ts";
import { addMinted, query, runCli, startServer, tempDir } from "../helpers.ts";
import { dbPath, exists, runRelay } from "./support.ts";
import { serveInProcess } from "./serve_in_process.ts";

/** The checks in the order doctor prints them. */
const NAMES = [
  "integrity",
  "foreign keys",
  "file modes",
  "owner",
  "schema",
  "writes",
  "clock",
  "licenses",
  "leases",
];

/** One printed line: `status  name  rest`. */
interface Line {
  status: string;
  name: string;
  text: string;
}

/** The report's lines, parsed; asserts one line per check, in order. */
function lines(stdout: string): Map<string, Line> {
  const parsed = stdout.trimEnd().split("\n").map((line): Line => {
    const match = /^(ok|warn|FAIL) {2,4}(.{12}) {2}(.+)$/.exec(line);
    assert.ok(match, `a check line: ${JSON.stringify(line)}`);
    return { status: match[1], name: match[2].trimEnd(), text: match[3] };
  });
  assert.deepEqual(parsed.map((line) => line.name), NAMES);
  return new Map(parsed.map((line) => [line.name, line]));
}

/** Asserts that every check but `problems` is ok, and returns the report. */
function assertOnly(
  result: { code: number; stdout: string; stderr: string },
  problems: Record<string, "warn" | "FAIL">,
): Map<string, Line> {
  const report = lines(result.stdout);
  for (const [name, line] of report) {
    assert.equal(line.status, problems[name] ?? "ok", `${name}: ${line.text}`);
  }
  const count = Object.keys(problems).length;
  if (count === 0) {
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
  } else {
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      new RegExp(`^error: ${count} of 9 checks need action \\(.+\\)\\n$`),
    );
  }
  return report;
}

/** The names in `dir`, sorted. */
async function namesIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

/** A new database holding `count` minted licenses (30-day files), in a fresh folder. */
async function withLicenses(dir: string, count = 3): Promise<string[]> {
  return (await addMinted(dir, count)).map((file) => file.id);
}

/**
 * Overwrites `bytes` at the end of page `page` (1-based) of the database
 * file, or at the start of the page after it.
 */
async function scribble(
  path: string,
  page: number,
  bytes: Uint8Array,
  { at }: { at: "end" | "start of next" } = { at: "end" },
): Promise<void> {
  const db = new DatabaseSync(path, { readOnly: true });
  const size = Number(db.prepare("PRAGMA page_size").get()!.page_size);
  db.close();
  using file = await Deno.open(path, { read: true, write: true });
  await file.seek(at === "end" ? page * size - bytes.length : page * size, Deno.SeekMode.Start);
  await file.write(bytes);
}

/** The root page of the index or table `name`. */
function rootPage(path: string, name: string): number {
  return Number(
    query<{ rootpage: number }>(
      path,
      "SELECT rootpage FROM sqlite_master WHERE name = ?",
      name,
    )[0].rootpage,
  );
}

Deno.test("relay doctor passes a healthy database and changes nothing", async () => {
  await using dir = await tempDir();
  const ids = await withLicenses(dir.path);
  const db = dbPath(dir.path);
  const before = await Deno.readFile(db);
  const result = await runCli(["doctor"], { cwd: dir.path });
  const report = assertOnly(result, {});
  assert.equal(report.get("integrity")!.text, "integrity_check found no damage");
  assert.equal(report.get("file modes")!.text, "readable by the owner only (./relay.sqlite 0600)");
  assert.equal(report.get("schema")!.text, `version ${MIGRATIONS.length}, this Relay's latest`);
  assert.equal(report.get("writes")!.text, "the database accepts writes");
  assert.equal(report.get("licenses")!.text, `${ids.length} licenses, none expires within 7d`);
  // Not a byte changed, and no -wal or -shm left behind.
  assert.deepEqual(await Deno.readFile(db), before);
  assert.deepEqual((await namesIn(dir.path)).filter((name) => !name.endsWith(".lic")), [
    "relay.sqlite",
  ]);
});

Deno.test("relay doctor passes a database that relay serve is using", async () => {
  await using dir = await tempDir();
  await withLicenses(dir.path);
  await using server = await startServer([], { cwd: dir.path });
  const response = await fetch(`${server.url}/v1/nodes/running-node`, { method: "PUT" });
  assert.equal(response.status, 201);
  await response.body?.cancel();
  const result = await runCli(["doctor"], { cwd: dir.path });
  const report = assertOnly(result, {});
  // The server's -wal and -shm are checked too.
  assert.equal(
    report.get("file modes")!.text,
    "readable by the owner only (./relay.sqlite 0600, ./relay.sqlite-wal 0600, ./relay.sqlite-shm 0600)",
  );
  assert.equal((await server.stop()).status.code, 0);
});

Deno.test("relay doctor never creates a database", async () => {
  await using dir = await tempDir();
  const result = await runRelay(["--database", "typo.sqlite", "doctor"], { cwd: dir.path });
  assert.equal(result.stderr, 'error: Cannot open database "typo.sqlite": no such file\n');
  assert.equal(result.code, 1);
  assert.equal(result.stdout, "");
  assert.deepEqual(await namesIn(dir.path), []);
});

Deno.test("relay doctor warns about a database readable by others", async () => {
  await using dir = await tempDir();
  await withLicenses(dir.path);
  await Deno.chmod(dbPath(dir.path), 0o644);
  const result = await runCli(["doctor"], { cwd: dir.path });
  const report = assertOnly(result, { "file modes": "warn" });
  assert.equal(
    report.get("file modes")!.text,
    "./relay.sqlite is 0644: readable by group or others, and it holds the license keys; " +
      "chmod 600 ./relay.sqlite",
  );
  assert.equal(result.stderr, "error: 1 of 9 checks need action (1 warn)\n");
});

Deno.test("relay doctor finds a damaged page that quick_check misses", async (t) => {
  await using dir = await tempDir();
  await withLicenses(dir.path, 20);
  const db = dbPath(dir.path);

  await t.step("a damaged index entry: integrity FAIL", async () => {
    const copy = `${dir.path}/damaged.sqlite`;
    await Deno.copyFile(db, copy);
    const index = rootPage(copy, "sqlite_autoindex_licenses_1");
    await scribble(copy, index, new TextEncoder().encode("z".repeat(16)));
    // quick_check does not compare indexes with their tables; integrity_check does.
    assert.deepEqual(query(copy, "PRAGMA quick_check"), [{ quick_check: "ok" }]);
    const result = await runRelay(["--database", "damaged.sqlite", "doctor"], { cwd: dir.path });
    const report = assertOnly(result, { integrity: "FAIL" });
    assert.match(
      report.get("integrity")!.text,
      /^integrity_check found damage: .*sqlite_autoindex_licenses_1.*; stop relay serve and restore the latest good backup \(see relay backup\)$/,
    );
  });

  await t.step("a damaged table page: integrity and foreign keys FAIL, rows unread", async () => {
    const copy = `${dir.path}/broken.sqlite`;
    await Deno.copyFile(db, copy);
    const table = rootPage(copy, "licenses");
    // The first bytes of the page: its b-tree header.
    await scribble(copy, table - 1, new Uint8Array(64).fill(0xa5), { at: "start of next" });
    const result = await runRelay(["--database", "broken.sqlite", "doctor"], { cwd: dir.path });
    const report = assertOnly(result, {
      integrity: "FAIL",
      "foreign keys": "FAIL",
      clock: "warn",
      licenses: "warn",
      leases: "warn",
    });
    assert.match(
      report.get("integrity")!.text,
      /^integrity_check found damage: Tree \d+ page \d+: /,
    );
    for (const name of ["clock", "licenses", "leases"]) {
      assert.match(
        report.get(name)!.text,
        /^not checked: reading it failed: database disk image is malformed$/,
      );
    }
  });

  await t.step("a file that is not a database: it cannot be read", async () => {
    await Deno.writeFile(`${dir.path}/garbage.sqlite`, new Uint8Array(8192).fill(0xa5), {
      mode: 0o600,
    });
    const result = await runRelay(["--database", "garbage.sqlite", "doctor"], { cwd: dir.path });
    const report = lines(result.stdout);
    assert.equal(result.code, 1);
    assert.deepEqual(report.get("integrity"), {
      status: "FAIL",
      name: "integrity",
      text: "the database cannot be read: file is not a database; stop relay serve and restore " +
        "the latest good backup (see relay backup)",
    });
    assert.equal(report.get("file modes")!.status, "ok");
    for (const name of ["foreign keys", "schema", "writes", "clock", "licenses", "leases"]) {
      assert.equal(report.get(name)!.text, "not checked: the database cannot be read", name);
    }
  });

  await t.step("relay backup refuses to write a copy of the damaged database", async () => {
    const result = await runRelay(
      ["--database", "damaged.sqlite", "backup", "--to", "copy.sqlite"],
      { cwd: dir.path },
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: Backup "copy.sqlite" failed its integrity check \(/);
    assert.equal(await exists(`${dir.path}/copy.sqlite`), false);
  });
});

Deno.test("relay doctor finds rows that point to rows that do not exist", async () => {
  await using dir = await tempDir();
  const [id] = await withLicenses(dir.path, 2);
  const db = new DatabaseSync(dbPath(dir.path));
  // As another tool with foreign keys off could leave it.
  db.exec("PRAGMA foreign_keys = OFF");
  db.prepare("UPDATE licenses SET node_id = 4242 WHERE guid = ?").run(id);
  db.close();
  const result = await runRelay(["doctor"], { cwd: dir.path });
  const report = assertOnly(result, { "foreign keys": "FAIL" });
  assert.match(
    report.get("foreign keys")!.text,
    /^1 row points to rows that do not exist \(licenses row \d+ -> nodes\)/,
  );
});

Deno.test("relay doctor fails when the clock is before the newest audit record", async () => {
  await using dir = await tempDir();
  await withLicenses(dir.path);
  const [{ newest }] = query<{ newest: number }>(
    dbPath(dir.path),
    "SELECT max(created_at) AS newest FROM audit_logs",
  );
  const result = await runRelay(["doctor"], {
    cwd: dir.path,
    now: new Date((newest - 3 * 3600) * 1000),
  });
  const report = assertOnly(result, { clock: "FAIL" });
  const at = (seconds: number) => new Date(seconds * 1000).toISOString().replace(".000Z", "Z");
  assert.equal(
    report.get("clock")!.text,
    `the clock (${at(newest - 3 * 3600)}) is 3h behind the newest audit record (${
      at(newest)
    }): it went backwards; set the system clock right (NTP) before serving: leases and expiries are timed by it`,
  );
});

Deno.test("relay doctor warns about expired and expiring license files", async (t) => {
  await using dir = await tempDir();
  const ids = await withLicenses(dir.path, 2);
  const day = 86_400_000;

  await t.step("30-day files, 31 days later: expired", async () => {
    const result = await runRelay(["doctor"], {
      cwd: dir.path,
      now: new Date(Date.now() + 31 * day),
    });
    const report = assertOnly(result, { licenses: "warn" });
    const text = report.get("licenses")!.text;
    assert.match(
      text,
      /^2 licenses expired \((.+)\); renew them: relay del the old file, relay add the new one \(relay ls --expiring 7d lists them\)$/,
    );
    for (const id of ids) assert.ok(text.includes(id), id);
  });

  await t.step("25 days later: they expire within 7d", async () => {
    const result = await runRelay(["doctor"], {
      cwd: dir.path,
      now: new Date(Date.now() + 25 * day),
    });
    const report = assertOnly(result, { licenses: "warn" });
    assert.match(report.get("licenses")!.text, /^2 licenses expire within 7d \(/);
  });

  await t.step("today with --expiring 40d: they expire within 40d", async () => {
    const result = await runRelay(["doctor", "--expiring", "40d"], { cwd: dir.path });
    const report = assertOnly(result, { licenses: "warn" });
    assert.match(
      report.get("licenses")!.text,
      /^2 licenses expire within 40d \(.+relay ls --expiring 40d lists them\)$/,
    );
  });

  await t.step("a bad --expiring is a usage error", async () => {
    const result = await runRelay(["doctor", "--expiring", "soon"], { cwd: dir.path });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^error: Invalid duration "soon"/);
  });
});

Deno.test("relay doctor warns about leases past their expiry when no server reaps them", async (t) => {
  await using dir = await tempDir();
  await withLicenses(dir.path, 2);
  const start = new Date(Math.floor(Date.now() / 1000) * 1000);
  {
    await using server = await serveInProcess(["--ttl", "60s"], { cwd: dir.path, now: start });
    const response = await fetch(`${server.url}/v1/nodes/stopped-node`, { method: "PUT" });
    assert.equal(response.status, 201);
    await response.body?.cancel();
    assert.equal((await server.stop()).code, 0);
  }
  const expiry = start.getTime() + 60_000;

  await t.step(
    "within a minute of its expiry: a running reaper would still get to it",
    async () => {
      const result = await runRelay(["doctor"], { cwd: dir.path, now: new Date(expiry + 30_000) });
      assertOnly(result, {});
    },
  );

  await t.step("two minutes after: overdue", async () => {
    const result = await runRelay(["doctor"], { cwd: dir.path, now: new Date(expiry + 120_000) });
    const report = assertOnly(result, { leases: "warn" });
    assert.equal(
      report.get("leases")!.text,
      `1 lease expired over a minute ago and still held (stopped-node; the oldest expired at ${
        new Date(expiry).toISOString().replace(".000Z", "Z")
      }); run relay serve: its reaper releases them (if it runs, it is stuck: restart it)`,
    );
  });
});

Deno.test("relay doctor refuses a database from a newer Relay without touching it", async () => {
  await using dir = await tempDir();
  await withLicenses(dir.path);
  const db = dbPath(dir.path);
  const next = MIGRATIONS.length + 1;
  const writer = new DatabaseSync(db);
  writer.prepare("INSERT INTO relay_migrations (version, name, applied_at) VALUES (?, 'future', 0)")
    .run(next);
  writer.close();
  const before = await Deno.readFile(db);
  const result = await runRelay(["doctor"], { cwd: dir.path });
  const report = lines(result.stdout);
  assert.equal(result.code, 1);
  assert.equal(report.get("schema")!.status, "FAIL");
  assert.match(
    report.get("schema")!.text,
    new RegExp(
      `was written by a newer Relay \\(schema version ${next}, this Relay knows up to ${MIGRATIONS.length}\\); upgrade Relay to use it$`,
    ),
  );
  for (const name of ["clock", "licenses", "leases"]) {
    assert.equal(report.get(name)!.text, "not checked: the schema is not this Relay's latest");
  }
  assert.equal(report.get("integrity")!.status, "ok");
  assert.deepEqual(await Deno.readFile(db), before);
});

Deno.test("relay doctor tells that a Keygen Relay database is not yet migrated, and does not migrate it", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const reference = new DatabaseSync(db);
  reference.exec("PRAGMA journal_mode = WAL");
  reference.exec(MIGRATIONS[0].sql);
  reference.close();
  await Deno.chmod(db, 0o600);
  const result = await runCli(["doctor"], { cwd: dir.path });
  const report = lines(result.stdout);
  assert.equal(result.code, 1);
  assert.deepEqual(report.get("schema"), {
    status: "warn",
    name: "schema",
    text: "written by Keygen Relay and not yet migrated; the next relay serve or relay add " +
      "migrates it, keeping every row (make a relay backup first)",
  });
  assert.equal(report.get("integrity")!.status, "ok");
  assert.equal(report.get("writes")!.status, "ok");
  const tables = query<{ name: string }>(db, "SELECT name FROM sqlite_master WHERE type = 'table'")
    .map((row) => row.name);
  assert.ok(!tables.includes("relay_migrations"), "not migrated");
});

Deno.test("relay doctor fails when the database does not accept writes", async () => {
  await using dir = await tempDir();
  await withLicenses(dir.path);
  // Another process holds the write lock.
  const holder = new DatabaseSync(dbPath(dir.path));
  holder.exec("BEGIN IMMEDIATE");
  try {
    const result = await runCli(["doctor"], { cwd: dir.path });
    const report = assertOnly(result, { writes: "FAIL" });
    assert.equal(
      report.get("writes")!.text,
      "the database does not accept writes: database is locked; another process holds the " +
        "write lock too long: find it (fuser ./relay.sqlite)",
    );
  } finally {
    holder.exec("ROLLBACK");
    holder.close();
  }
});

Deno.test("relay doctor --json gives every check for scripts", async () => {
  await using dir = await tempDir();
  await withLicenses(dir.path);
  await Deno.chmod(dbPath(dir.path), 0o640);
  const result = await runRelay(["doctor", "--json"], { cwd: dir.path });
  assert.equal(result.code, 1);
  assert.equal(result.stderr, "error: 1 of 9 checks need action (1 warn)\n");
  const report = JSON.parse(result.stdout);
  assert.deepEqual(Object.keys(report), ["database", "healthy", "checks"]);
  assert.equal(report.database, dbPath(dir.path));
  assert.equal(report.healthy, false);
  assert.deepEqual(report.checks.map((check: { name: string }) => check.name), NAMES);
  for (const check of report.checks) {
    assert.deepEqual(Object.keys(check), ["name", "status", "message", "hint"]);
    assert.equal(check.status, check.name === "file modes" ? "warn" : "ok", check.name);
    assert.equal(typeof check.message, "string");
    assert.equal(check.hint === null, check.status === "ok");
  }
  assert.equal(report.checks[2].hint, `chmod 600 ${dbPath(dir.path)}`);

  await Deno.chmod(dbPath(dir.path), 0o600);
  const healthy = await runRelay(["doctor", "--json"], { cwd: dir.path });
  assert.equal(healthy.code, 0, healthy.stderr);
  assert.equal(JSON.parse(healthy.stdout).healthy, true);
});
