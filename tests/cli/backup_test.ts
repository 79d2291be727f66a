/**
 * `relay backup`: consistent copies of a database that a real `relay serve`
 * writes to under load, each one private (0600), intact, and opened by
 * Relay; and the refusals (an existing file, the database itself, a missing
 * database) with their exit codes and messages.
 *
 * @module
 */

import assert from "node:assert/strict";
import { MIGRATIONS } from "../../lib/storage/sqlite/schema.ts";
import {
  addMinted,
  FREE_COUNT_MISMATCHES,
  prng,
  query,
  runCli,
  startServer,
  tempDir,
} from "../helpers.ts";
import { dbPath, exists, runRelay } from "./support.ts";

const LICENSES = 40;
const FINGERPRINTS = 80;
const WORKERS = 16;

/** The names in `dir`, sorted. */
async function namesIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

/** `backup written: PATH (N bytes, M licenses, schema version V)` parsed. */
function parseWritten(stdout: string): { path: string; bytes: number; licenses: number } {
  const match = /^backup written: (.+) \((\d+) bytes, (\d+) licenses?, schema version (\d+)\)\n$/
    .exec(stdout);
  assert.ok(match, `one line saying what was written: ${JSON.stringify(stdout)}`);
  assert.equal(Number(match[4]), MIGRATIONS.length, "the schema version of this Relay");
  return { path: match[1], bytes: Number(match[2]), licenses: Number(match[3]) };
}

/**
 * Asserts that the copy is a state the server committed: intact, every lease
 * held by an active node and every active node holding one, the free counts
 * right, one `license.leased` record per claim.
 */
function assertConsistent(copy: string, at: string): { leased: number } {
  assert.deepEqual(query(copy, "PRAGMA integrity_check"), [{ integrity_check: "ok" }], at);
  assert.deepEqual(query(copy, "PRAGMA foreign_key_check"), [], `${at}: foreign keys`);
  const leases = query<{ node_id: number; fingerprint: string | null; active: number | null }>(
    copy,
    `SELECT l.node_id, n.fingerprint, n.deactivated_at IS NULL AS active
     FROM licenses l LEFT JOIN nodes n ON n.id = l.node_id WHERE l.node_id IS NOT NULL`,
  );
  for (const lease of leases) {
    assert.ok(lease.fingerprint !== null, `${at}: node ${lease.node_id} exists`);
    assert.equal(lease.active, 1, `${at}: node ${lease.node_id} is active`);
  }
  assert.equal(new Set(leases.map((l) => l.node_id)).size, leases.length, `${at}: one per node`);
  const [{ active }] = query<{ active: number }>(
    copy,
    "SELECT count(*) AS active FROM nodes WHERE deactivated_at IS NULL",
  );
  assert.equal(active, leases.length, `${at}: the active nodes are the lease holders`);
  assert.deepEqual(query(copy, FREE_COUNT_MISMATCHES), [], `${at}: free counts`);
  const [{ licenses, claims, leased }] = query<
    { licenses: number; claims: number; leased: number }
  >(
    copy,
    `SELECT (SELECT count(*) FROM licenses) AS licenses,
       (SELECT sum(claims) FROM licenses) AS claims,
       (SELECT count(*) FROM audit_logs WHERE event_type_id = 3) AS leased`,
  );
  assert.equal(licenses, LICENSES, `${at}: every license`);
  assert.equal(leased, claims, `${at}: one license.leased record per claim`);
  return { leased: leases.length };
}

Deno.test("relay backup copies a database consistently while relay serve writes to it", async () => {
  await using dir = await tempDir();
  await addMinted(dir.path, LICENSES);
  await using server = await startServer(["--ttl", "5m"], { cwd: dir.path });

  // Clients claim, heartbeat and release until the backups are done.
  let stop = false;
  const statuses: Record<number, number> = {};
  const random = prng(0xbac0);
  const workers = Array.from({ length: WORKERS }, async () => {
    while (!stop) {
      const fingerprint = `node-${Math.floor(random() * FINGERPRINTS)}`;
      const method = random() < 0.25 ? "DELETE" : "PUT";
      const response = await fetch(`${server.url}/v1/nodes/${fingerprint}`, { method });
      await response.body?.cancel();
      statuses[response.status] = (statuses[response.status] ?? 0) + 1;
    }
  });

  const copies: string[] = [];
  try {
    for (let i = 1; i <= 4; i++) {
      // Let some requests through between the copies.
      const before = Object.values(statuses).reduce((a, b) => a + b, 0);
      while (Object.values(statuses).reduce((a, b) => a + b, 0) < before + 50) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const result = await runCli(["backup", "--to", `copy-${i}.sqlite`], { cwd: dir.path });
      assert.equal(result.stderr, "");
      assert.equal(result.code, 0);
      const written = parseWritten(result.stdout);
      assert.equal(written.path, `copy-${i}.sqlite`);
      assert.equal(written.licenses, LICENSES);
      const copy = `${dir.path}/copy-${i}.sqlite`;
      assert.equal(written.bytes, (await Deno.stat(copy)).size);
      copies.push(copy);
    }
  } finally {
    stop = true;
    await Promise.all(workers);
  }
  assert.ok((statuses[201] ?? 0) > 0 && (statuses[202] ?? 0) > 0, JSON.stringify(statuses));
  const stopped = await server.stop();
  assert.equal(stopped.status.code, 0, stopped.stderr);

  let leasedInSome = 0;
  for (const copy of copies) {
    const at = copy.slice(dir.path.length + 1);
    assert.equal((await Deno.stat(copy)).mode! & 0o777, 0o600, `${at}: mode 0600`);
    leasedInSome += assertConsistent(copy, at).leased;
    // One self-contained file: no -wal or -shm beside it.
    assert.equal(await exists(`${copy}-wal`), false, `${at}: no -wal`);
    const ls = await runRelay(["ls", "--database", copy, "--json"], { cwd: dir.path });
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(JSON.parse(ls.stdout).length, LICENSES, `${at}: relay ls reads it`);
  }
  assert.ok(leasedInSome > 0, "the copies caught leases in flight");
  // Nothing but the copies was left in the folder (no temporary files).
  assert.deepEqual(
    (await namesIn(dir.path)).filter((name) => !name.endsWith(".lic")),
    ["copy-1.sqlite", "copy-2.sqlite", "copy-3.sqlite", "copy-4.sqlite", "relay.sqlite"],
  );
});

Deno.test("relay backup writes a file only its owner can read, whatever the umask", async () => {
  await using dir = await tempDir();
  await addMinted(dir.path, 2);
  const result = await runCli(["backup", "--to", "open.sqlite"], {
    cwd: dir.path,
    wrap: ["sh", "-c", 'umask 000; exec "$0" "$@"'],
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal((await Deno.stat(`${dir.path}/open.sqlite`)).mode! & 0o777, 0o600);
  assert.equal(parseWritten(result.stdout).licenses, 2);
});

Deno.test("relay backup refuses to overwrite, to copy onto the database, and a missing database", async (t) => {
  await using dir = await tempDir();
  const guids = (await addMinted(dir.path, 3)).map((file) => file.id);
  const db = dbPath(dir.path);
  const before = await Deno.readFile(db);

  await t.step("an existing file that is not empty: exit 1, left as it was", async () => {
    await Deno.writeTextFile(`${dir.path}/taken.sqlite`, "keep me");
    const result = await runRelay(["backup", "--to", "taken.sqlite"], { cwd: dir.path });
    assert.equal(
      result.stderr,
      'error: Backup "taken.sqlite" exists and is not empty; pass --force to replace it\n',
    );
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.equal(await Deno.readTextFile(`${dir.path}/taken.sqlite`), "keep me");
  });

  await t.step("--force replaces it with the copy", async () => {
    const result = await runRelay(["backup", "--to", "taken.sqlite", "--force"], {
      cwd: dir.path,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(parseWritten(result.stdout).licenses, 3);
    assert.equal((await Deno.stat(`${dir.path}/taken.sqlite`)).mode! & 0o777, 0o600);
    assertGuids(`${dir.path}/taken.sqlite`, guids);
  });

  await t.step("an empty file is filled, and made private", async () => {
    await Deno.writeFile(`${dir.path}/empty.sqlite`, new Uint8Array(), { mode: 0o644 });
    await Deno.chmod(`${dir.path}/empty.sqlite`, 0o644);
    const result = await runRelay(["backup", "--to", "empty.sqlite"], { cwd: dir.path });
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await Deno.stat(`${dir.path}/empty.sqlite`)).mode! & 0o777, 0o600);
    assertGuids(`${dir.path}/empty.sqlite`, guids);
  });

  for (const target of ["relay.sqlite", "./relay.sqlite", `${db}`, "relay.sqlite-wal"]) {
    await t.step(`--to ${target}: the database itself, exit 2`, async () => {
      const result = await runRelay(["backup", "--to", target], { cwd: dir.path });
      // The database as typed: by --database (its default here) or by --to.
      assert.match(
        result.stderr,
        /^error: Cannot back up database "(\.\/)?relay\.sqlite" onto itself; give --to another file\n$/,
      );
      assert.equal(result.code, 2);
    });
  }

  await t.step("--to a hard link of the database: exit 2", async () => {
    await Deno.link(db, `${dir.path}/linked.sqlite`);
    const result = await runRelay(["backup", "--to", "linked.sqlite", "--force"], {
      cwd: dir.path,
    });
    assert.equal(result.code, 2);
    assert.equal(
      result.stderr,
      'error: Cannot back up database "./relay.sqlite" onto itself; give --to another file\n',
    );
    await Deno.remove(`${dir.path}/linked.sqlite`);
  });

  await t.step("a missing database: exit 1 naming it, nothing created", async () => {
    const result = await runRelay(["--database", "typo.sqlite", "backup", "--to", "out.sqlite"], {
      cwd: dir.path,
    });
    assert.equal(result.stderr, 'error: Cannot open database "typo.sqlite": no such file\n');
    assert.equal(result.code, 1);
    assert.equal(await exists(`${dir.path}/typo.sqlite`), false);
    assert.equal(await exists(`${dir.path}/out.sqlite`), false);
  });

  await t.step("a folder that does not exist: exit 1", async () => {
    const result = await runRelay(["backup", "--to", "no/such/out.sqlite"], { cwd: dir.path });
    assert.equal(
      result.stderr,
      'error: Cannot write backup "no/such/out.sqlite": its folder does not exist\n',
    );
    assert.equal(result.code, 1);
  });

  await t.step("--to is required: exit 2", async () => {
    const result = await runRelay(["backup"], { cwd: dir.path });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--to <path>/);
  });

  await t.step("the database is unchanged, and no temporary file is left", async () => {
    assert.deepEqual(await Deno.readFile(db), before);
    assert.deepEqual(
      (await namesIn(dir.path)).filter((name) => !name.endsWith(".lic")),
      ["empty.sqlite", "relay.sqlite", "taken.sqlite"],
    );
  });
});

/** The copy is intact and holds these licenses, in order. */
function assertGuids(copy: string, guids: string[]): void {
  const stored = query<{ guid: string }>(copy, "SELECT guid FROM licenses ORDER BY id");
  assert.deepEqual(stored.map((row) => row.guid), guids);
  assert.deepEqual(query(copy, "PRAGMA integrity_check"), [{ integrity_check: "ok" }]);
}
