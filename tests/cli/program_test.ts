/**
 * The `relay` program as a whole: version, help, unknown commands, global
 * flags and their environment variables, the database file, exit codes.
 *
 * Most cases run in-process (`runRelay`); those about the real process (its
 * exit code, its working folder, file modes, its stderr) spawn `main.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { mintFiles, runCli, tempDir } from "../helpers.ts";
import { auditCount, dbPath, exists, fileArgs, runRelay, storedGuids } from "./support.ts";

const DENO_JSON = fileURLToPath(new URL("../../deno.json", import.meta.url));
const COMMANDS = ["add", "del", "ls", "stat", "version"];

Deno.test("relay version and relay --version print the version of deno.json", async (t) => {
  await using dir = await tempDir();
  const { version } = JSON.parse(await Deno.readTextFile(DENO_JSON));
  assert.equal(typeof version, "string");
  for (const args of [["version"], ["--version"]]) {
    await t.step(`${args.join(" ")}, in a real process`, async () => {
      const result = await runCli(args, { cwd: dir.path });
      assert.equal(result.stderr, "");
      assert.equal(result.code, 0);
      assert.equal(result.stdout, `${version}\n`);
    });
  }
  assert.equal(await exists(dbPath(dir.path)), false, "no database is created");
});

Deno.test("relay prints usage with no arguments and help for every command", async (t) => {
  await using dir = await tempDir();

  await t.step("no arguments", async () => {
    const result = await runRelay([], { cwd: dir.path });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.ok(result.stdout.startsWith("Usage: relay"), result.stdout);
    for (const command of COMMANDS) {
      assert.match(result.stdout, new RegExp(`^  ${command}\\b`, "m"), command);
    }
  });

  await t.step("--help", async () => {
    const result = await runRelay(["--help"], { cwd: dir.path });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.ok(result.stdout.includes("Usage:"), result.stdout);
    for (const flag of ["--database", "--no-audit"]) assert.ok(result.stdout.includes(flag));
  });

  const flagsOf: Record<string, string[]> = {
    add: ["--file", "--key", "--public-key", "--pool"],
    del: ["--license", "--force"],
    ls: ["--pool", "--plain", "--json"],
    stat: ["--license", "--plain", "--json"],
    version: [],
  };
  for (const command of COMMANDS) {
    await t.step(`${command} --help`, async () => {
      const result = await runRelay([command, "--help"], { cwd: dir.path });
      assert.equal(result.stderr, "");
      assert.equal(result.code, 0);
      assert.ok(result.stdout.includes(`Usage: relay ${command}`), result.stdout);
      for (const flag of flagsOf[command]) assert.ok(result.stdout.includes(flag), flag);
    });
  }
  assert.equal(await exists(dbPath(dir.path)), false, "no database is created");
});

Deno.test("relay refuses an unknown command or global flag with exit code 2", async (t) => {
  await using dir = await tempDir();
  const cases: [string[], string][] = [[["frobnicate"], "frobnicate"], [
    ["--bogus", "ls"],
    "--bogus",
  ]];
  for (const [args, named] of cases) {
    await t.step(`${args.join(" ")}, in a real process`, async () => {
      const result = await runCli(args, { cwd: dir.path });
      assert.equal(result.code, 2);
      assert.equal(result.stdout, "");
      assert.ok(result.stderr.startsWith("error:"), result.stderr);
      assert.ok(result.stderr.includes(named), result.stderr);
    });
  }
});

Deno.test("relay --database and RELAY_DATABASE choose the database file", async (t) => {
  await using dir = await tempDir();
  const defaultDb = dbPath(dir.path);
  const { publicKey, files } = await mintFiles(dir.path, 4);
  await Deno.mkdir(`${dir.path}/sub`);

  // `ls` opens only an existing database: an empty file is one (SQLite's
  // empty database), which `ls` then migrates, so the file grows where it
  // was looked for.
  await t.step("relay --database x ls, relative to a real process's folder", async () => {
    await Deno.writeFile(`${dir.path}/sub/before.sqlite`, new Uint8Array());
    const result = await runCli(["--database", "sub/before.sqlite", "ls"], { cwd: dir.path });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "license pool is empty\n");
    assert.ok((await Deno.stat(`${dir.path}/sub/before.sqlite`)).size > 0);
  });

  await t.step("relay ls --database x", async () => {
    await Deno.writeFile(`${dir.path}/sub/after.sqlite`, new Uint8Array());
    const result = await runRelay(["ls", "--database", "sub/after.sqlite"], { cwd: dir.path });
    assert.equal(result.code, 0, result.stderr);
    assert.ok((await Deno.stat(`${dir.path}/sub/after.sqlite`)).size > 0);
  });

  await t.step("relay add ... --database x", async () => {
    const db = `${dir.path}/sub/add.sqlite`;
    const result = await runRelay(
      ["add", ...fileArgs([files[0]]), "--public-key", publicKey, "--database", db],
      { cwd: dir.path },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(await storedGuids(db), [files[0].id]);
  });

  await t.step("RELAY_DATABASE", async () => {
    const result = await runRelay(["add", ...fileArgs([files[1]]), "--public-key", publicKey], {
      cwd: dir.path,
      env: { RELAY_DATABASE: "sub/env.sqlite" },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(await storedGuids(`${dir.path}/sub/env.sqlite`), [files[1].id]);
    const listed = await runRelay(["ls", "--json"], {
      cwd: dir.path,
      env: { RELAY_DATABASE: "sub/env.sqlite" },
    });
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout).map((l: { id: string }) => l.id), [files[1].id]);
  });

  await t.step("--database wins over RELAY_DATABASE", async () => {
    const result = await runRelay(
      ["--database", "sub/flag.sqlite", "add", ...fileArgs([files[2]]), "--public-key", publicKey],
      { cwd: dir.path, env: { RELAY_DATABASE: "sub/ignored.sqlite" } },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(await storedGuids(`${dir.path}/sub/flag.sqlite`), [files[2].id]);
    assert.equal(await exists(`${dir.path}/sub/ignored.sqlite`), false);
  });

  assert.equal(await exists(defaultDb), false, "./relay.sqlite is not created");
});

Deno.test("relay --no-audit and RELAY_NO_AUDIT=1 add licenses without audit rows", async (t) => {
  await using dir = await tempDir();
  const { publicKey, files } = await mintFiles(dir.path, 4);
  const cases: [string, string[], Record<string, string> | undefined][] = [
    ["--no-audit before the command", ["--no-audit", "add"], undefined],
    ["--no-audit after the command", ["add", "--no-audit"], undefined],
    ["RELAY_NO_AUDIT=1", ["add"], { RELAY_NO_AUDIT: "1" }],
  ];
  for (const [i, [name, args, env]] of cases.entries()) {
    await t.step(name, async () => {
      const db = `${dir.path}/${i}.sqlite`;
      const result = await runRelay(
        ["--database", db, ...args, ...fileArgs([files[i]]), "--public-key", publicKey],
        { cwd: dir.path, env },
      );
      assert.equal(result.stderr, "");
      assert.equal(result.code, 0);
      assert.equal(result.stdout, `license added successfully: ${files[i].id}\n`);
      assert.deepEqual(await storedGuids(db), [files[i].id]);
      assert.equal(await auditCount(db), 0);
    });
  }

  await t.step("with audit on, the same add writes audit rows", async () => {
    const db = `${dir.path}/audited.sqlite`;
    const result = await runRelay(
      ["--database", db, "add", ...fileArgs([files[3]]), "--public-key", publicKey],
      { cwd: dir.path, env: { RELAY_NO_AUDIT: "0" } },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await auditCount(db), 1);
  });
});

Deno.test("relay creates a new database file readable by its owner only", async () => {
  await using dir = await tempDir();
  const { publicKey, files } = await mintFiles(dir.path, 1);
  // A real process: the mode must not depend on anything the test process set up.
  const result = await runCli(["add", ...fileArgs(files), "--public-key", publicKey], {
    cwd: dir.path,
  });
  assert.equal(result.code, 0, result.stderr);
  const db = dbPath(dir.path);
  assert.equal((await Deno.stat(db)).mode! & 0o777, 0o600);
  const modes = async () => {
    for (const suffix of ["-wal", "-shm"]) {
      if (await exists(db + suffix)) {
        assert.equal((await Deno.stat(db + suffix)).mode! & 0o777, 0o600, suffix);
      }
    }
  };
  await modes();
  // While a connection writes (as the server does), the WAL and SHM files exist.
  const open = new DatabaseSync(db);
  try {
    open.exec("UPDATE licenses SET claims = claims + 1");
    assert.ok(await exists(`${db}-wal`), "the database is in WAL mode");
    await modes();
  } finally {
    open.close();
  }
});

Deno.test("relay reports an unusable database on one error line", async (t) => {
  await using dir = await tempDir();

  await t.step("a folder that does not exist, in a real process", async () => {
    const result = await runCli(["--database", "no/such/folder/relay.sqlite", "ls"], {
      cwd: dir.path,
    });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.ok(result.stderr.startsWith("error: "), result.stderr);
    assert.ok(result.stderr.includes("no/such/folder"), result.stderr);
    assert.equal(result.stderr.split("\n").length, 2, result.stderr);
    assert.equal(await exists(`${dir.path}/no`), false);
  });

  const junk = `${dir.path}/junk.sqlite`;
  const bytes = crypto.getRandomValues(new Uint8Array(8192));
  await Deno.writeFile(junk, bytes);
  for (const command of [["ls"], ["del", "--license", "x"], ["stat", "--license", "x"]]) {
    await t.step(`a file that is not a SQLite database: ${command[0]}`, async () => {
      const result = await runRelay(["--database", junk, ...command], { cwd: dir.path });
      assert.equal(result.code, 1);
      assert.equal(result.stdout, "");
      assert.ok(result.stderr.startsWith("error: "), result.stderr);
      assert.ok(result.stderr.endsWith("\n"), result.stderr);
      assert.equal(result.stderr.split("\n").length, 2, `one line: ${result.stderr}`);
      assert.ok(!/\n\s+at /.test(result.stderr), "no stack trace");
      assert.deepEqual(await Deno.readFile(junk), bytes, "the file is left as it was");
    });
  }
});

Deno.test("relay add -vvv and del -vvv log one line per license on stderr, never the key", async () => {
  await using dir = await tempDir();
  const { publicKey, files } = await mintFiles(dir.path, 2);
  const quiet = await runRelay(
    ["add", "--file", files[0].path, "--key", files[0].key, "--public-key", publicKey],
    { cwd: dir.path },
  );
  assert.equal(quiet.stderr, "");
  const add = await runRelay(
    ["-vvv", "add", "--file", files[1].path, "--key", files[1].key, "--public-key", publicKey],
    { cwd: dir.path },
  );
  assert.equal(add.code, 0);
  const addLines = add.stderr.trim().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(addLines.map((line) => [line.level, line.msg, line.id, line.file]), [
    ["info", "license file verified", files[1].id, files[1].path],
  ]);
  assert.ok(!add.stderr.includes(files[1].key));
  const del = await runRelay(["del", "-vvv", "--license", files[1].id], { cwd: dir.path });
  assert.equal(del.code, 0);
  assert.deepEqual(
    del.stderr.trim().split("\n").map((line) => JSON.parse(line).msg),
    ["license deleted"],
  );
});
