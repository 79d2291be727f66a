/**
 * `relay add --key-file` and `RELAY_KEY_FILE`: license keys read from files,
 * one per line, paired with the `--file` paths in order, so keys stay out of
 * the process list and out of `deno task`'s echo of the command line. No
 * message ever shows a key.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type CliResult, type MintedFile, mintFiles, query, runDeno, tempDir } from "../helpers.ts";
import { addedLines, dbPath, runRelay, storedGuids } from "./support.ts";

const DENO_JSON = fileURLToPath(new URL("../../deno.json", import.meta.url));
const README = fileURLToPath(new URL("../../README.md", import.meta.url));

/** Stored `[guid, key]` pairs in row order. */
function storedKeys(db: string): [string, string][] {
  return query<{ guid: string; key: string }>(db, "SELECT guid, key FROM licenses ORDER BY id")
    .map((row) => [row.guid, row.key]);
}

/** Asserts that no key of `files` appears anywhere in what the run printed. */
function assertNoKey(result: CliResult, files: readonly MintedFile[]): void {
  for (const file of files) {
    assert.ok(!result.stdout.includes(file.key), `stdout shows the key of ${file.id}`);
    assert.ok(!result.stderr.includes(file.key), `stderr shows the key of ${file.id}`);
  }
}

Deno.test("relay add --key-file pairs the keys, one per line, with the files in order", async (t) => {
  await using dir = await tempDir();
  const { publicKey, files } = await mintFiles(dir.path, 6);
  const env = { RELAY_PUBLIC_KEY: publicKey };
  const name = (file: MintedFile) => file.path.slice(dir.path.length + 1);

  await t.step("one file of keys: blank lines, blanks around keys and CRLF ignored", async () => {
    const [a, b, c] = files;
    await Deno.writeTextFile(
      `${dir.path}/keys.txt`,
      `\n${a.key}  \r\n\n\t${b.key}\r\n${c.key}\t \n\n`,
    );
    const result = await runRelay(
      ["add", "--file", name(a), "--file", `${name(b)},${name(c)}`, "--key-file", "keys.txt"],
      { cwd: dir.path, env, timeoutMs: 30_000 },
    );
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.equal(result.stdout, addedLines([a.id, b.id, c.id]));
    assert.deepEqual(storedKeys(dbPath(dir.path)), [a, b, c].map((f) => [f.id, f.key]));
  });

  await t.step("RELAY_KEY_FILE, several key files separated by commas", async () => {
    const [, , , d, e, f] = files;
    await Deno.mkdir(`${dir.path}/keys`);
    await Deno.writeTextFile(`${dir.path}/keys/d.key`, `${d.key}\n${e.key}\n`);
    await Deno.writeTextFile(`${dir.path}/keys/f.key`, f.key);
    const db = `${dir.path}/env.sqlite`;
    const result = await runRelay(
      ["add", "--database", "env.sqlite", "--file", [d, e, f].map(name).join(",")],
      { cwd: dir.path, env: { ...env, RELAY_KEY_FILE: "keys/d.key,keys/f.key" } },
    );
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.equal(result.stdout, addedLines([d.id, e.id, f.id]));
    assert.deepEqual(storedKeys(db), [d, e, f].map((file) => [file.id, file.key]));
  });

  await t.step("repeated --key-file wins over RELAY_KEY_FILE", async () => {
    const [a, b] = files;
    await Deno.writeTextFile(`${dir.path}/a.key`, `${a.key}\n`);
    await Deno.writeTextFile(`${dir.path}/b.key`, `${b.key}\n`);
    const result = await runRelay(
      [
        "add",
        "--database",
        "flag.sqlite",
        ...["--file", name(a), "--file", name(b)],
        ...["--key-file", "a.key", "--key-file", "b.key"],
      ],
      { cwd: dir.path, env: { ...env, RELAY_KEY_FILE: "keys.txt" } },
    );
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.deepEqual(storedKeys(`${dir.path}/flag.sqlite`), [[a.id, a.key], [b.id, b.key]]);
  });
});

Deno.test("relay add refuses bad key inputs without showing a key, and stores nothing", async (t) => {
  await using dir = await tempDir();
  const { publicKey, files } = await mintFiles(dir.path, 3);
  const [a, b, c] = files;
  await Deno.writeTextFile(`${dir.path}/three.txt`, `${a.key}\n${b.key}\n${c.key}\n`);
  await Deno.writeTextFile(`${dir.path}/swapped.txt`, `${b.key}\n${a.key}\n`);
  await Deno.writeTextFile(`${dir.path}/blank.txt`, "\n  \r\n\t\n");
  const two = ["--file", a.path, "--file", b.path];
  const cases: [string, string[], Record<string, string>, number, RegExp][] = [
    [
      "more keys than files",
      [...two, "--key-file", "three.txt"],
      {},
      2,
      /^error: number of key and file flags must match \(2 files, 3 keys in "three\.txt"\)\n$/,
    ],
    [
      "fewer keys than files",
      [...two, "--file", c.path, "--key-file", "swapped.txt"],
      {},
      2,
      /^error: number of key and file flags must match \(3 files, 2 keys in "swapped\.txt"\)\n$/,
    ],
    [
      "more keys than files, over two key files",
      [...two, "--key-file", "three.txt", "--key-file", "swapped.txt"],
      {},
      2,
      /^error: number of key and file flags must match \(2 files, 5 keys in "three\.txt", "swapped\.txt"\)\n$/,
    ],
    [
      "--key and --key-file",
      [...two, "--key", `${a.key},${b.key}`, "--key-file", "swapped.txt"],
      {},
      2,
      /^error: Give the license keys with --key or --key-file, not both\n$/,
    ],
    [
      "--key and RELAY_KEY_FILE",
      [...two, "--key", `${a.key},${b.key}`],
      { RELAY_KEY_FILE: "swapped.txt" },
      2,
      /^error: Give the license keys with --key or a key file \(RELAY_KEY_FILE is set\), not both\n$/,
    ],
    [
      "no keys at all",
      two,
      {},
      2,
      /^error: required option '--key-file <path>' or '--key <key>' not specified\n$/,
    ],
    ["an empty --key-file", [...two, "--key-file", ""], {}, 2, /^error: --key-file needs at least/],
    [
      "a key file of blank lines",
      [...two, "--key-file", "blank.txt"],
      {},
      2,
      /^error: Key file "blank\.txt" holds no license key\n$/,
    ],
    [
      "a missing key file",
      [...two, "--key-file", "nope.txt"],
      {},
      1,
      /^error: Cannot read key file "nope\.txt": no such file\n$/,
    ],
    [
      "keys in the wrong order, at -vvvv (debug)",
      ["-vvvv", ...two, "--key-file", "swapped.txt"],
      {},
      1,
      /^error: Cannot add "[^"]*\.lic": license key does not decrypt the license file/,
    ],
  ];
  for (const [name, args, env, code, stderr] of cases) {
    await t.step(name, async () => {
      const [verbose, rest] = args[0] === "-vvvv" ? [["-vvvv"], args.slice(1)] : [[], args];
      const result = await runRelay([...verbose, "add", ...rest, "--public-key", publicKey], {
        cwd: dir.path,
        env,
        timeoutMs: 30_000,
      });
      assert.match(result.stderr, stderr);
      assert.equal(result.code, code);
      assert.equal(result.stdout, "");
      assertNoKey(result, files);
      assert.deepEqual(await storedGuids(dbPath(dir.path)), []);
    });
  }
});

/** `deno task [--quiet] relay ...args` in `cwd`, through the project's deno.json. */
function denoTask(args: string[], cwd: string, quiet: boolean): Promise<CliResult> {
  const task = ["task", ...(quiet ? ["--quiet"] : []), "--config", DENO_JSON, "relay"];
  return runDeno([...task, ...args], { cwd });
}

Deno.test("deno task echoes a --key to stderr; --quiet and --key-file keep it hidden", async (t) => {
  await using dir = await tempDir();
  const { publicKey, files } = await mintFiles(dir.path, 2);
  const [a, b] = files;

  await t.step("why the README avoids it: deno task relay add --key K", async () => {
    // A refused run (no such file) is enough: deno echoes before relay starts.
    const result = await denoTask(
      ["add", "--file", "missing.lic", "--key", a.key, "--public-key", publicKey],
      dir.path,
      false,
    );
    assert.equal(result.code, 1);
    assert.ok(result.stderr.includes(a.key), "deno task prints the command line");
  });

  await t.step("the README's way: deno task --quiet relay add --key-file", async () => {
    await Deno.writeTextFile(`${dir.path}/keys.txt`, `${b.key}\n`);
    const result = await denoTask(
      ["add", "--file", b.path, "--key-file", "keys.txt", "--public-key", publicKey],
      dir.path,
      true,
    );
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.equal(result.stdout, addedLines([b.id]));
    assertNoKey(result, files);
  });
});

Deno.test("the README's commands keep license keys and secrets off the command line", async () => {
  const readme = await Deno.readTextFile(README);
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]);
  assert.ok(blocks.length > 3, "the README has shell examples");
  const lines = blocks.flatMap((block) => block.split("\n"));
  const adds = lines.filter((line) => /\brelay add\b/.test(line));
  assert.ok(adds.length > 0, "the README shows relay add");
  for (const line of adds) {
    assert.ok(!/--key[ =]/.test(line), `a key on the command line: ${line}`);
    assert.ok(/--key-file|RELAY_KEY_FILE/.test(line), `keys from a file: ${line}`);
  }
  for (const line of lines) {
    assert.ok(!/--signing-secret[ =]/.test(line), `a secret on the command line: ${line}`);
    // deno task prints the command line it runs, with any value in it, unless --quiet.
    if (/\btask relay\b/.test(line)) assert.fail(`deno task relay without --quiet: ${line}`);
  }
});
