/**
 * `relay add` with inputs that are not license files: too large, unreadable,
 * not a regular file, binary garbage, a public key path that is a folder.
 *
 * A missing path, a folder and an empty file are covered in `add_test.ts`
 * ("relay add adds nothing when one of the files is refused").
 *
 * @module
 */

import assert from "node:assert/strict";
import { MAX_FILE_BYTES } from "../../cli/files.ts";
import { type CliResult, mintFiles, tempDir } from "../helpers.ts";
import { dbPath, runRelay, storedGuids } from "./support.ts";

/** Exit 1, nothing on stdout, exactly one `error: ` line that names `path` in quotes. */
function assertRefused(result: CliResult, path: string, says: RegExp): void {
  assert.equal(result.code, 1, result.stderr);
  assert.equal(result.stdout, "");
  const lines = result.stderr.split("\n");
  assert.equal(lines.length, 2, `one line on stderr: ${JSON.stringify(result.stderr)}`);
  assert.equal(lines[1], "");
  assert.ok(lines[0].startsWith("error: "), lines[0]);
  assert.ok(lines[0].includes(`"${path}"`), `stderr names "${path}": ${lines[0]}`);
  assert.match(lines[0], says);
}

/** Deterministic bytes that are no text at all: NULs, invalid UTF-8, control characters. */
function garbage(length: number): Uint8Array {
  let state = 0x2545f491;
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  bytes.set([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x1b]);
  return bytes;
}

/** Whether this process can read `path` (root can, whatever its mode). */
async function canRead(path: string): Promise<boolean> {
  try {
    await Deno.readFile(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.PermissionDenied) return false;
    throw error;
  }
}

/** Makes a named pipe with `mkfifo`; false when there is no `mkfifo` to run. */
async function makeFifo(path: string): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("mkfifo", { args: [path] }).output();
    return success;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

Deno.test("relay add refuses inputs that are not license files and stores nothing", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const { publicKey, files } = await mintFiles(dir.path, 1);
  const [good] = files;

  /** `relay add` with the good file and then `path`; refused, nothing stored. */
  async function addWithGood(path: string, says: RegExp): Promise<void> {
    const result = await runRelay(
      ["add", "--file", good.path, "--key", good.key, "--file", path, "--key", good.key],
      { cwd: dir.path, env: { RELAY_PUBLIC_KEY: publicKey }, timeoutMs: 30_000 },
    );
    assertRefused(result, path, says);
    assert.deepEqual(await storedGuids(db), []);
  }

  await t.step(
    "a file over the 4 MiB limit, even a license file padded with newlines",
    async () => {
      const huge = `${dir.path}/huge.lic`;
      const size = 5 * 1024 * 1024;
      assert.ok(size > MAX_FILE_BYTES);
      const padded = new Uint8Array(size).fill(0x0a);
      padded.set(new TextEncoder().encode(good.certificate));
      await Deno.writeFile(huge, padded);
      await addWithGood(huge, new RegExp(`${size} bytes, larger than`));
    },
  );

  await t.step("a file without read permission", async () => {
    const locked = `${dir.path}/locked.lic`;
    await Deno.writeTextFile(locked, "not a license file\n");
    await Deno.chmod(locked, 0o000);
    if (await canRead(locked)) {
      // Running as root: the mode does not stop the read, so the contents are judged.
      await addWithGood(locked, /malformed/);
    } else {
      await addWithGood(locked, /permission denied/);
    }
  });

  await t.step("a named pipe, or a device where there is no mkfifo", async () => {
    const fifo = `${dir.path}/pipe.lic`;
    // Refused from its file type, before anything opens it (which would block).
    await addWithGood((await makeFifo(fifo)) ? fifo : "/dev/null", /not a regular file/);
  });

  await t.step("binary garbage", async () => {
    const binary = `${dir.path}/garbage.lic`;
    await Deno.writeFile(binary, garbage(4096));
    await addWithGood(binary, /malformed/);
  });

  await t.step("a public key path that is a directory", async () => {
    const keyDir = `${dir.path}/public_key.d`;
    await Deno.mkdir(keyDir);
    const result = await runRelay(
      ["add", "--file", good.path, "--key", good.key, "--public-key", keyDir],
      { cwd: dir.path, timeoutMs: 30_000 },
    );
    assertRefused(result, keyDir, /directory/);
    assert.deepEqual(await storedGuids(db), []);
  });
});
