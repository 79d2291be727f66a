/**
 * Clear failure modes: an unwritable folder, a read-only database, a full
 * disk, a corrupt database and a port in use each give one `error:` line and
 * a non-zero exit, and leave no half-written state.
 *
 * Read-only and full disks come from `disk_faults.ts`: each test runs once
 * (as a step) for every means this process has (tmpfs mounts where it has
 * CAP_SYS_ADMIN; file modes, a `/dev/full` WAL and a file size limit without
 * it), so root, a non-root user and root in a container all meet each fault.
 */

import assert from "node:assert/strict";
import { addMinted, dbPath, mintFiles, query, runCli, tempDir } from "../helpers.ts";
import { type DiskFault, fullDiskFaults, readOnlyFaults } from "./disk_faults.ts";

/** Exactly one line on stderr, starting `error: `, and no stack trace. */
function assertOneErrorLine(stderr: string, ...patterns: RegExp[]): void {
  assert.match(stderr, /^error: [^\n]+\n$/, stderr);
  for (const pattern of patterns) assert.match(stderr, pattern);
  assert.ok(!stderr.includes("    at "), "no stack trace");
}

/** `relay add` of one freshly minted file into `database`. */
async function addOne(dir: string, database: string, wrap: readonly string[]) {
  const { publicKey, files } = await mintFiles(dir, 1);
  const [file] = files;
  return await runCli(
    [
      "add",
      "--database",
      database,
      "--file",
      file.path,
      "--key",
      file.key,
      "--public-key",
      publicKey,
    ],
    { cwd: dir, wrap },
  );
}

/** `relay serve` on `database`, which is expected to fail before listening. */
function serveOn(dir: string, database: string, wrap: readonly string[]) {
  return runCli(["serve", "--database", database, "--bind", "127.0.0.1", "--port", "0"], {
    cwd: dir,
    wrap,
  });
}

function integrity(path: string): string {
  return String(query(path, "PRAGMA integrity_check")[0].integrity_check);
}

function count(path: string): number {
  return Number(query(path, "SELECT count(*) AS n FROM licenses")[0].n);
}

/** Runs `check` as one step per fault; at least one fault must exist. */
async function eachFault(
  t: Deno.TestContext,
  faults: DiskFault[],
  check: (fault: DiskFault) => Promise<void>,
): Promise<void> {
  assert.ok(faults.length > 0, "no means of making this fault here (see disk_faults.ts)");
  for (const fault of faults) await t.step(fault.name, () => check(fault));
}

Deno.test("an unwritable database folder: one error line, exit 1", async (t) => {
  await eachFault(t, await readOnlyFaults(), async (fault) => {
    await using dir = await tempDir();
    await using folder = await fault.folder(dir.path, "1m");
    await folder.apply();
    const database = `${folder.path}/relay.sqlite`;
    const add = await addOne(dir.path, database, folder.wrap);
    assert.equal(add.code, 1);
    assertOneErrorLine(add.stderr, /Cannot create database "[^"]+relay\.sqlite"/, fault.error);
    assert.equal(add.stdout, "");
    const serve = await serveOn(dir.path, database, folder.wrap);
    assert.equal(serve.code, 1);
    assertOneErrorLine(serve.stderr, /Cannot create database/, fault.error);
    assert.deepEqual([...Deno.readDirSync(folder.path)], [], "nothing written");
  });
});

Deno.test("a read-only database file: one error line, exit 1, the data left as it was", async (t) => {
  await eachFault(t, await readOnlyFaults(), async (fault) => {
    await using dir = await tempDir();
    await using folder = await fault.folder(dir.path, "4m");
    const database = `${folder.path}/relay.sqlite`;
    await addMinted(dir.path, 2, { database });
    const before = await Deno.readFile(database);
    await folder.apply();

    const add = await addOne(dir.path, database, folder.wrap);
    assert.equal(add.code, 1);
    assertOneErrorLine(add.stderr, /[Dd]atabase "[^"]+relay\.sqlite"/, fault.error);
    assert.equal(add.stdout, "");
    const serve = await serveOn(dir.path, database, folder.wrap);
    assert.equal(serve.code, 1);
    assertOneErrorLine(serve.stderr, /database/i, fault.error);

    assert.deepEqual(await Deno.readFile(database), before, "the file is unchanged");
    // A read-only folder cannot hold SQLite's lock files: check a copy.
    const copy = `${dir.path}/copy.sqlite`;
    await Deno.copyFile(database, copy);
    assert.equal(count(copy), 2);
    assert.equal(integrity(copy), "ok");
  });
});

Deno.test("a full disk: relay add fails whole with one error line and the database stays sound", async (t) => {
  await using scratch = await tempDir();
  await eachFault(t, await fullDiskFaults(scratch.path), async (fault) => {
    await using dir = await tempDir();
    // 400 files of about 3 KB, written to the WAL, fill a 1 MB tmpfs.
    await using folder = await fault.folder(dir.path, "1m");
    const database = `${folder.path}/relay.sqlite`;
    await addMinted(dir.path, 2, { database });
    const { publicKey, files } = await mintFiles(dir.path, 400);
    const args = ["add", "--database", database, "--public-key", publicKey];
    for (const file of files) args.push("--file", file.path, "--key", file.key);

    await folder.apply();
    const add = await runCli(args, { cwd: dir.path, wrap: folder.wrap });
    assert.equal(add.code, 1, add.stderr);
    assertOneErrorLine(add.stderr, /[Dd]atabase "[^"]+relay\.sqlite"/, fault.error);
    assert.equal(add.stdout, "", "nothing reported as added");
    assert.equal(count(database), 2, "all or nothing");
    assert.equal(integrity(database), "ok");

    // What is there is still listed, with the disk still full.
    await folder.apply();
    const ls = await runCli(["ls", "--json", "--database", database], {
      cwd: dir.path,
      wrap: folder.wrap,
    });
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(JSON.parse(ls.stdout).length, 2);
  });
});

Deno.test("a corrupt database: one error line, exit 1, no stack trace", async () => {
  await using dir = await tempDir();
  const database = dbPath(dir.path);
  await addMinted(dir.path, 20);
  // Keep the header (so it still looks like SQLite) and overwrite pages after it.
  const bytes = await Deno.readFile(database);
  assert.ok(bytes.length > 8192, "the database spans several pages");
  for (let i = 4096; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff;
  await Deno.writeFile(database, bytes);

  for (
    const args of [["ls"], ["stat", "--license", "x"], [
      "serve",
      "--bind",
      "127.0.0.1",
      "--port",
      "0",
    ]]
  ) {
    const result = await runCli(args, { cwd: dir.path, timeoutMs: 20_000 });
    assert.equal(result.code, 1, `${args[0]}: ${result.stderr}`);
    assertOneErrorLine(result.stderr, /database/i);
  }
});
