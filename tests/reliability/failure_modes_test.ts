/**
 * Clear failure modes: an unwritable folder, a read-only database, a full
 * disk, a corrupt database and a port in use each give one `error:` line and
 * a non-zero exit, and leave no half-written state.
 *
 * Read-only and full file systems are real tmpfs mounts where the test runs as
 * root (as CI does; root ignores file modes). Elsewhere the same cases use file
 * modes and SQLite's `max_page_count`.
 */

import assert from "node:assert/strict";
import { addMinted, dbPath, mintFiles, query, runCli, tempDir } from "../helpers.ts";

const isRoot = Deno.uid() === 0;

async function run(command: string, ...args: string[]): Promise<boolean> {
  const { success } = await new Deno.Command(command, { args, stdout: "null", stderr: "null" })
    .output();
  return success;
}

/**
 * A new folder inside `dir`: as root, a tmpfs of `size` mounted there and
 * unmounted on dispose; otherwise a plain folder.
 */
async function scratchFolder(
  dir: string,
  size: string,
): Promise<AsyncDisposable & { path: string }> {
  const path = `${dir}/mnt`;
  await Deno.mkdir(path);
  if (!isRoot) return { path, [Symbol.asyncDispose]: async () => {} };
  assert.ok(await run("mount", "-t", "tmpfs", "-o", `size=${size},mode=0755`, "tmpfs", path));
  return { path, [Symbol.asyncDispose]: async () => void await run("umount", "-l", path) };
}

/** Makes `path` (a mount from {@link tmpfs}, or a plain folder) read-only. */
async function makeReadOnly(path: string): Promise<void> {
  if (isRoot) {
    assert.ok(await run("mount", "-o", "remount,ro", path));
  } else {
    for await (const entry of Deno.readDir(path)) await Deno.chmod(`${path}/${entry.name}`, 0o444);
    await Deno.chmod(path, 0o555);
  }
}

/** Exactly one line on stderr, starting `error: `, and no stack trace. */
function assertOneErrorLine(stderr: string, pattern: RegExp): void {
  assert.match(stderr, /^error: [^\n]+\n$/, stderr);
  assert.match(stderr, pattern);
  assert.ok(!stderr.includes("    at "), "no stack trace");
}

/** `relay add` of one freshly minted file into `database`. */
async function addOne(dir: string, database: string) {
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
    { cwd: dir },
  );
}

/** `relay serve` on `database`, which is expected to fail before listening. */
function serveOn(dir: string, database: string) {
  return runCli(["serve", "--database", database, "--bind", "127.0.0.1", "--port", "0"], {
    cwd: dir,
  });
}

function integrity(path: string): string {
  return String(query(path, "PRAGMA integrity_check")[0].integrity_check);
}

Deno.test("an unwritable database folder: one error line, exit 1", async () => {
  await using dir = await tempDir();
  await using mount = await scratchFolder(dir.path, "1m");
  await makeReadOnly(mount.path);
  const database = `${mount.path}/relay.sqlite`;
  const add = await addOne(dir.path, database);
  assert.equal(add.code, 1);
  assertOneErrorLine(add.stderr, /Cannot create database "[^"]+relay\.sqlite"/);
  assert.equal(add.stdout, "");
  const serve = await serveOn(dir.path, database);
  assert.equal(serve.code, 1);
  assertOneErrorLine(serve.stderr, /Cannot create database/);
});

Deno.test("a read-only database file: one error line, exit 1, the data left as it was", async () => {
  await using dir = await tempDir();
  await using mount = await scratchFolder(dir.path, "4m");
  const database = `${mount.path}/relay.sqlite`;
  await addMinted(dir.path, 2, { database });
  await makeReadOnly(mount.path);

  const add = await addOne(dir.path, database);
  assert.equal(add.code, 1);
  assertOneErrorLine(
    add.stderr,
    /database "[^"]+relay\.sqlite"[^\n]*(readonly|read-only|unable to open)/i,
  );
  const serve = await serveOn(dir.path, database);
  assert.equal(serve.code, 1);
  assertOneErrorLine(serve.stderr, /database/i);

  // A read-only folder cannot hold SQLite's lock files: check a copy.
  const copy = `${dir.path}/copy.sqlite`;
  await Deno.copyFile(database, copy);
  assert.equal(query(copy, "SELECT count(*) AS n FROM licenses")[0].n, 2);
  assert.equal(integrity(copy), "ok");
});

Deno.test("a full disk: relay add fails whole with one error line and the database stays sound", async () => {
  await using dir = await tempDir();
  // 400 files of about 3 KB, written to the WAL and then the database, do not fit in 1 MB.
  await using mount = await scratchFolder(dir.path, "1m");
  const database = `${mount.path}/relay.sqlite`;
  const limit = isRoot ? [] : ["--pragma", "max_page_count=100"];
  await addMinted(dir.path, 2, { database });
  const { publicKey, files } = await mintFiles(dir.path, 400);
  const args = ["add", "--database", database, "--public-key", publicKey];
  for (const file of files) args.push("--file", file.path, "--key", file.key);

  const add = await runCli([...limit, ...args], { cwd: dir.path });
  assert.equal(add.code, 1);
  assertOneErrorLine(add.stderr, /database or disk is full/);
  assert.equal(add.stdout, "", "nothing reported as added");
  assert.equal(query(database, "SELECT count(*) AS n FROM licenses")[0].n, 2, "all or nothing");
  assert.equal(integrity(database), "ok");

  // What still fits is still served and listed.
  const ls = await runCli([...limit, "ls", "--json", "--database", database], { cwd: dir.path });
  assert.equal(ls.code, 0);
  assert.equal(JSON.parse(ls.stdout).length, 2);
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
