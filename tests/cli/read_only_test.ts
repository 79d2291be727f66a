/**
 * Commands that read or delete (`ls`, `stat`, `del`, `leases`, `release`, `audit`) never create a
 * database: a mistyped `--database` is an error naming the path, and no file
 * (nor `-wal`/`-shm`) appears. `add` and `serve` still create one.
 *
 * @module
 */

import assert from "node:assert/strict";
import { mintFiles, runCli, tempDir } from "../helpers.ts";
import { dbPath, exists, fileArgs, runRelay, storedGuids } from "./support.ts";
import { serveInProcess } from "./serve_in_process.ts";

const READERS: string[][] = [
  ["ls"],
  ["ls", "--json"],
  ["stat", "--license", "x"],
  ["del", "--license", "x"],
  ["del", "--license", "x", "--force"],
  ["leases"],
  ["leases", "--json"],
  ["release", "--node", "x"],
  ["release", "--license", "x"],
  ["audit"],
  ["audit", "--csv", "--event", "license.leased"],
];

/** The names in `dir`, sorted. */
async function namesIn(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

/** Exit 1, nothing on stdout, exactly the one line naming the missing database. */
function assertMissing(result: { code: number; stdout: string; stderr: string }, typed: string) {
  assert.equal(result.stderr, `error: Cannot open database "${typed}": no such file\n`);
  assert.equal(result.code, 1);
  assert.equal(result.stdout, "");
}

Deno.test("relay ls, stat, del, leases, release and audit never create a database", async (t) => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/data`);

  for (const command of READERS) {
    const name = command.join(" ");
    await t.step(`relay --database typo.sqlite ${name}`, async () => {
      const result = await runRelay(["--database", "data/typo.sqlite", ...command], {
        cwd: dir.path,
      });
      assertMissing(result, "data/typo.sqlite");
      assert.deepEqual(await namesIn(`${dir.path}/data`), [], "no file, -wal or -shm");
    });

    await t.step(`relay ${name} with the default database`, async () => {
      const result = await runRelay(command, { cwd: dir.path });
      assertMissing(result, "./relay.sqlite");
      assert.deepEqual(await namesIn(dir.path), ["data"]);
    });

    await t.step(`RELAY_DATABASE=typo.sqlite relay ${name}`, async () => {
      const result = await runRelay(command, {
        cwd: dir.path,
        env: { RELAY_DATABASE: "data/env.sqlite" },
      });
      assertMissing(result, "data/env.sqlite");
      assert.deepEqual(await namesIn(`${dir.path}/data`), []);
    });
  }

  await t.step("a folder that does not exist is not created either", async () => {
    const result = await runRelay(["--database", "no/such/relay.sqlite", "ls"], {
      cwd: dir.path,
    });
    assertMissing(result, "no/such/relay.sqlite");
    assert.equal(await exists(`${dir.path}/no`), false);
  });

  await t.step("in a real process: relay ls", async () => {
    const result = await runCli(["--database", "data/typo.sqlite", "ls"], { cwd: dir.path });
    assertMissing(result, "data/typo.sqlite");
    assert.deepEqual(await namesIn(`${dir.path}/data`), []);
  });
});

Deno.test("relay add and relay serve still create the database", async (t) => {
  await using dir = await tempDir();
  const { publicKey, files } = await mintFiles(dir.path, 1);

  await t.step("relay add", async () => {
    const db = `${dir.path}/added.sqlite`;
    const result = await runRelay(
      ["add", ...fileArgs(files), "--public-key", publicKey, "--database", "added.sqlite"],
      { cwd: dir.path },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(await storedGuids(db), [files[0].id]);
    // Now it exists, the readers use it.
    const listed = await runRelay(["--database", "added.sqlite", "ls", "--json"], {
      cwd: dir.path,
    });
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout).map((l: { id: string }) => l.id), [files[0].id]);
    const deleted = await runRelay(
      ["--database", "added.sqlite", "del", "--license", files[0].id],
      {
        cwd: dir.path,
      },
    );
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.deepEqual(await storedGuids(db), []);
  });

  await t.step("relay serve", async () => {
    await using server = await serveInProcess(["--database", "served.sqlite"], {
      cwd: dir.path,
      now: new Date(),
    });
    assert.ok(await exists(`${dir.path}/served.sqlite`));
    assert.equal((await server.stop()).code, 0);
    assert.equal(await exists(dbPath(dir.path)), false, "only the named database");
  });
});
