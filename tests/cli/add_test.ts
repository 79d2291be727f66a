/**
 * `relay add`: verify license files and store them, all or nothing.
 *
 * @module
 */

import assert from "node:assert/strict";
import { openStore } from "../../lib/storage/open.ts";
import { generateKeyPair, mintLicenseFile } from "../../scripts/mint.ts";
import {
  auditTrail,
  KEYGEN,
  type MintedFile,
  mintFiles,
  query,
  runCli,
  runInProcess,
  tempDir,
} from "../helpers.ts";
import {
  addedLines,
  auditCount,
  dbPath,
  fileArgs,
  rowId,
  runRelay,
  storedGuids,
  wholeSecondsAgo,
} from "./support.ts";

const TTL = 86_400;

interface LicenseRow {
  id: number;
  guid: string;
  file: Uint8Array;
  key: string;
  pool_id: number | null;
  file_issued_at: number | null;
  file_expires_at: number | null;
}

function licenseRows(db: string): LicenseRow[] {
  return query<LicenseRow>(
    db,
    "SELECT id, guid, file, key, pool_id, file_issued_at, file_expires_at FROM licenses ORDER BY id",
  );
}

Deno.test("relay add stores each license with its file, key, guid and file dates", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const issued = wholeSecondsAgo(3600);
  const issuedAt = issued.getTime() / 1000;
  const { publicKey, files } = await mintFiles(dir.path, 5, { issued, ttl: TTL });

  async function assertRows(expected: readonly MintedFile[]) {
    const rows = licenseRows(db);
    assert.deepEqual(rows.map((row) => row.guid), expected.map((file) => file.id));
    for (const [i, row] of rows.entries()) {
      if (i > 0) assert.ok(row.id > rows[i - 1].id, "row ids ascend in the given order");
      assert.deepEqual(new Uint8Array(row.file), await Deno.readFile(expected[i].path));
      assert.equal(row.key, expected[i].key);
      assert.equal(row.pool_id, null);
      assert.equal(row.file_issued_at, issuedAt);
      assert.equal(row.file_expires_at, issuedAt + TTL);
    }
    assert.deepEqual(
      auditTrail(db),
      rows.map((row) => ["license.added", "license", row.id, null]),
    );
  }

  await t.step("repeated --file/--key pairs", async () => {
    const added = files.slice(0, 3);
    const result = await runRelay(["add", ...fileArgs(added), "--public-key", publicKey], {
      cwd: dir.path,
    });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.equal(result.stdout, addedLines(added.map((file) => file.id)));
    await assertRows(added);
  });

  await t.step("comma-separated lists, paired in the given order", async () => {
    const [c, d] = [files[4], files[3]];
    const result = await runRelay(
      [
        "add",
        "--file",
        `${c.path},${d.path}`,
        "--key",
        `${c.key},${d.key}`,
        "--public-key",
        publicKey,
      ],
      { cwd: dir.path },
    );
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.equal(result.stdout, addedLines([c.id, d.id]));
    await assertRows([...files.slice(0, 3), c, d]);
  });
});

Deno.test("relay add --pool creates the pool and audits pool.added before license.added", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const { publicKey, files } = await mintFiles(dir.path, 4);
  let prodId = 0;

  await t.step("a new pool", async () => {
    const result = await runRelay(
      ["add", ...fileArgs(files.slice(0, 2)), "--public-key", publicKey, "--pool", "prod"],
      { cwd: dir.path },
    );
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.equal(result.stdout, addedLines([files[0].id, files[1].id]));
    const pools = query<{ id: number; name: string }>(db, "SELECT id, name FROM pools");
    assert.equal(pools.length, 1);
    assert.equal(pools[0].name, "prod");
    prodId = pools[0].id;
    const ids = [rowId(db, files[0].id), rowId(db, files[1].id)];
    assert.deepEqual(auditTrail(db), [
      ["pool.added", "pool", prodId, null],
      ["license.added", "license", ids[0], prodId],
      ["license.added", "license", ids[1], prodId],
    ]);
    assert.deepEqual(
      query(db, "SELECT guid, pool_id FROM licenses ORDER BY id"),
      [{ guid: files[0].id, pool_id: prodId }, { guid: files[1].id, pool_id: prodId }],
    );
  });

  await t.step("an existing pool is reused, not added again", async () => {
    const result = await runRelay(
      ["add", ...fileArgs([files[2]]), "--public-key", publicKey, "--pool", "prod"],
      { cwd: dir.path },
    );
    assert.equal(result.code, 0);
    assert.equal(result.stdout, addedLines([files[2].id]));
    assert.equal(query(db, "SELECT id FROM pools").length, 1);
    assert.deepEqual(auditTrail(db).slice(3), [
      ["license.added", "license", rowId(db, files[2].id), prodId],
    ]);
  });

  await t.step("RELAY_POOL names the pool", async () => {
    const result = await runRelay(["add", ...fileArgs([files[3]]), "--public-key", publicKey], {
      cwd: dir.path,
      env: { RELAY_POOL: "dev" },
    });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.equal(result.stdout, addedLines([files[3].id]));
    const dev = query<{ id: number }>(db, "SELECT id FROM pools WHERE name = 'dev'");
    assert.equal(dev.length, 1);
    const id = rowId(db, files[3].id);
    assert.deepEqual(query(db, "SELECT pool_id FROM licenses WHERE id = ?", id), [
      { pool_id: dev[0].id },
    ]);
    assert.deepEqual(auditTrail(db).slice(4), [
      ["pool.added", "pool", dev[0].id, null],
      ["license.added", "license", id, dev[0].id],
    ]);
  });
});

Deno.test("relay add refuses a count mismatch of --file and --key", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const { publicKey, files } = await mintFiles(dir.path, 2);
  const [a, b] = files;
  const cases: [string, string[]][] = [
    ["two files, one key", ["--file", a.path, "--file", b.path, "--key", a.key]],
    ["one file, two keys in a comma list", ["--file", a.path, "--key", `${a.key},${b.key}`]],
  ];
  for (const [name, args] of cases) {
    await t.step(name, async () => {
      const result = await runRelay(["add", ...args, "--public-key", publicKey], { cwd: dir.path });
      assert.equal(result.code, 2);
      assert.equal(result.stdout, "");
      assert.ok(
        result.stderr.startsWith("error: number of key and file flags must match"),
        result.stderr,
      );
      assert.deepEqual(await storedGuids(db), []);
    });
  }
});

Deno.test("relay add adds nothing when one of the files is refused", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const { publicKey, files } = await mintFiles(dir.path, 2);
  const [good, other] = files;
  const missing = `${dir.path}/missing.lic`;
  const folder = `${dir.path}/folder.lic`;
  await Deno.mkdir(folder);
  const empty = `${dir.path}/empty.lic`;
  await Deno.writeTextFile(empty, "");
  const stranger = await mintLicenseFile(await generateKeyPair("ed25519"));
  const strangerPath = `${dir.path}/stranger.lic`;
  await Deno.writeTextFile(strangerPath, stranger.certificate);

  // An empty database, so "nothing added" is checked against real tables.
  await (await openStore(db, { now: 0 })).close();

  const cases: { name: string; path: string; key: string; says: RegExp }[] = [
    { name: "a wrong key", path: other.path, key: good.key, says: /key/i },
    { name: "a missing path", path: missing, key: other.key, says: /no such file/ },
    { name: "a directory", path: folder, key: other.key, says: /directory/ },
    { name: "an empty file", path: empty, key: other.key, says: /empty/ },
    {
      name: "a file signed by another key pair",
      path: strangerPath,
      key: stranger.key,
      says: /genuine|signature/,
    },
  ];
  for (const { name, path, key, says } of cases) {
    await t.step(`a good file and ${name}`, async () => {
      const result = await runRelay(
        ["add", "--file", good.path, "--key", good.key, "--file", path, "--key", key],
        { cwd: dir.path, env: { RELAY_PUBLIC_KEY: publicKey } },
      );
      assert.equal(result.code, 1, result.stderr);
      assert.equal(result.stdout, "");
      assert.ok(result.stderr.startsWith("error: "), result.stderr);
      assert.match(result.stderr, says);
      assert.ok(result.stderr.includes(path), `stderr names the file: ${result.stderr}`);
      assert.deepEqual(await storedGuids(db), []);
      assert.equal(await auditCount(db), 0);
    });
  }
});

Deno.test("relay add refuses a license that is already stored", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const { publicKey, files } = await mintFiles(dir.path, 2);
  const [stored, fresh] = files;
  const env = { RELAY_PUBLIC_KEY: publicKey };

  await t.step("the same file added again", async () => {
    const first = await runRelay(["add", ...fileArgs([stored])], { cwd: dir.path, env });
    assert.equal(first.code, 0, first.stderr);
    const again = await runRelay(["add", ...fileArgs([stored])], { cwd: dir.path, env });
    assert.equal(again.code, 1);
    assert.equal(again.stdout, "");
    assert.ok(again.stderr.startsWith("error: "), again.stderr);
    assert.ok(
      again.stderr.includes("license with the provided key already exists"),
      again.stderr,
    );
    assert.deepEqual(await storedGuids(db), [stored.id]);
    assert.equal(await auditCount(db), 1);
  });

  await t.step("a new file with a stored one adds neither", async () => {
    const result = await runRelay(["add", ...fileArgs([fresh, stored])], { cwd: dir.path, env });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.ok(result.stderr.includes("license with the provided key already exists"));
    assert.deepEqual(await storedGuids(db), [stored.id]);
    assert.equal(await auditCount(db), 1);
  });

  await t.step("the same file twice in one command", async () => {
    await using other = await tempDir();
    const result = await runRelay(["add", ...fileArgs([fresh, fresh])], { cwd: other.path, env });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.ok(result.stderr.startsWith("error: "), result.stderr);
    assert.deepEqual(await storedGuids(dbPath(other.path)), []);
    assert.equal(await auditCount(dbPath(other.path)), 0);
  });
});

Deno.test("relay add requires --file and --key and refuses unknown flags", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const { publicKey, files } = await mintFiles(dir.path, 1);
  const [file] = files;
  const cases: [string, string[], string][] = [
    ["missing --file", ["--key", file.key], "--file"],
    ["missing --key", ["--file", file.path], "--key"],
    ["an unknown flag", [...fileArgs(files), "--bogus"], "--bogus"],
  ];
  for (const [name, args, named] of cases) {
    await t.step(name, async () => {
      const result = await runRelay(["add", ...args, "--public-key", publicKey], {
        cwd: dir.path,
      });
      assert.equal(result.code, 2);
      assert.equal(result.stdout, "");
      assert.ok(result.stderr.startsWith("error:"), result.stderr);
      assert.ok(result.stderr.includes(named), result.stderr);
      assert.deepEqual(await storedGuids(db), []);
    });
  }
});

Deno.test("relay add accepts the real Keygen files inside their validity window", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const result = await runInProcess(
    [
      "--database",
      db,
      "add",
      ...KEYGEN.licenses.flatMap((license) => ["--file", license.path, "--key", license.key]),
      "--public-key",
      KEYGEN.publicKey,
    ],
    { now: KEYGEN.validAt },
  );
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  assert.equal(result.stdout, addedLines(KEYGEN.licenses.map((license) => license.id)));
  const rows = licenseRows(db);
  assert.deepEqual(rows.map((row) => row.guid), KEYGEN.licenses.map((license) => license.id));
  for (const [i, row] of rows.entries()) {
    assert.equal(row.key, KEYGEN.licenses[i].key);
    assert.deepEqual(new Uint8Array(row.file), await Deno.readFile(KEYGEN.licenses[i].path));
  }
  // Issued 2025-12-05, expiring 30 days later (ttl 2592000).
  assert.equal(rows[0].file_issued_at, Date.parse("2025-12-05T16:49:12Z") / 1000);
  assert.equal(rows[0].file_expires_at, Date.parse("2026-01-04T16:49:12Z") / 1000);
  assert.equal(rows[1].file_expires_at! - rows[1].file_issued_at!, 2_592_000);
});

Deno.test("relay add refuses the real Keygen files once they have expired", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const args = [
    "add",
    ...KEYGEN.licenses.flatMap((license) => ["--file", license.path, "--key", license.key]),
    "--public-key",
    KEYGEN.publicKey,
  ];

  await t.step("with the real clock, in a real process", async () => {
    const result = await runCli(args, { cwd: dir.path });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.ok(result.stderr.startsWith("error: "), result.stderr);
    assert.ok(result.stderr.includes("expired"), result.stderr);
    assert.deepEqual(await storedGuids(db), []);
  });

  await t.step("just after the first file's expiry", async () => {
    const result = await runInProcess(["--database", db, ...args], {
      now: new Date("2026-01-04T16:49:14Z"),
    });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.ok(result.stderr.includes("expired"), result.stderr);
    assert.deepEqual(await storedGuids(db), []);
  });
});
