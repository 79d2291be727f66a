/**
 * `relay add --public-key`: the key as hex, PEM text, a file holding either,
 * or `RELAY_PUBLIC_KEY`; and keys that are not keys.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type MintedFile, mintFiles, tempDir } from "../helpers.ts";
import { addedLines, dbPath, fileArgs, runRelay, storedGuids } from "./support.ts";

Deno.test("relay add takes the public key as hex, a file, RELAY_PUBLIC_KEY or RSA PEM", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const ed = await mintFiles(dir.path, 3);
  const rsa = await mintFiles(dir.path, 2, { kind: "rsa" });
  assert.ok(rsa.publicKey.startsWith("-----BEGIN PUBLIC KEY-----"));
  const edKeyPath = `${dir.path}/ed25519.pub`;
  await Deno.writeTextFile(edKeyPath, `${ed.publicKey}\n`);
  const rsaKeyPath = `${dir.path}/rsa.pem`;
  await Deno.writeTextFile(rsaKeyPath, rsa.publicKey);

  const cases: { name: string; file: MintedFile; args: string[]; env?: Record<string, string> }[] =
    [
      { name: "64 hex characters", file: ed.files[0], args: ["--public-key", ed.publicKey] },
      { name: "a file holding the hex", file: ed.files[1], args: ["--public-key", edKeyPath] },
      {
        name: "RELAY_PUBLIC_KEY",
        file: ed.files[2],
        args: [],
        env: { RELAY_PUBLIC_KEY: ed.publicKey },
      },
      { name: "an RSA PEM file", file: rsa.files[0], args: ["--public-key", rsaKeyPath] },
      { name: "RSA PEM text", file: rsa.files[1], args: ["--public-key", rsa.publicKey] },
    ];
  const added: string[] = [];
  for (const { name, file, args, env } of cases) {
    await t.step(name, async () => {
      const result = await runRelay(["add", ...fileArgs([file]), ...args], { cwd: dir.path, env });
      assert.equal(result.stderr, "");
      assert.equal(result.code, 0);
      assert.equal(result.stdout, addedLines([file.id]));
      added.push(file.id);
      assert.deepEqual(await storedGuids(db), added);
    });
  }
});

Deno.test("relay add refuses an invalid or missing public key", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const { files } = await mintFiles(dir.path, 1);
  const missingKey = `${dir.path}/no_such_key.pub`;

  for (const [name, key] of [["abc", "abc"], ["a path that does not exist", missingKey]]) {
    await t.step(name, async () => {
      const result = await runRelay(["add", ...fileArgs(files), "--public-key", key], {
        cwd: dir.path,
      });
      assert.equal(result.code, 1);
      assert.equal(result.stdout, "");
      assert.ok(result.stderr.startsWith("error: "), result.stderr);
      assert.ok(result.stderr.includes(key), result.stderr);
      assert.deepEqual(await storedGuids(db), []);
    });
  }

  await t.step("no --public-key at all", async () => {
    const result = await runRelay(["add", ...fileArgs(files)], { cwd: dir.path });
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.ok(result.stderr.startsWith("error: "), result.stderr);
    assert.ok(result.stderr.includes("--public-key"), result.stderr);
    assert.deepEqual(await storedGuids(db), []);
  });
});
