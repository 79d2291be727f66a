/**
 * `relay ls`: the reference plain table, JSON, pool filtering.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { run } from "../../cli/program.ts";
import { openStore } from "../../lib/storage/open.ts";
import { type MintedFile, mintFiles, tempDir } from "../helpers.ts";
import {
  dbPath,
  fileArgs,
  lease,
  plainTable,
  rfc3339,
  runRelay,
  wholeSecondsAgo,
} from "./support.ts";

const TTL = 7 * 86_400;

/**
 * Three licenses: `prod` (leased by `node-a1`, 3 claims), no pool (free,
 * released once), `dev` (free, never claimed). Returns the expected rows.
 */
async function fixture(dir: string) {
  const db = dbPath(dir);
  const issued = wholeSecondsAgo(7200);
  const expiresAt = issued.getTime() / 1000 + TTL;
  const { publicKey, files } = await mintFiles(dir, 3, { issued, ttl: TTL });
  const [prod, none, dev] = files;
  const add = async (file: MintedFile, pool: string[]) => {
    const result = await runRelay(
      ["add", ...fileArgs([file]), "--public-key", publicKey, ...pool],
      {
        cwd: dir,
      },
    );
    assert.equal(result.code, 0, result.stderr);
  };
  await add(prod, ["--pool", "prod"]);
  await add(none, []);
  await add(dev, ["--pool", "dev"]);
  const claimedAt = issued.getTime() / 1000 + 60;
  const releasedAt = claimedAt + 30;
  const nodeId = lease(db, prod.id, "node-a1", { heartbeatAt: claimedAt, claimedAt, claims: 3 });
  const database = new DatabaseSync(db);
  database.prepare("UPDATE licenses SET claims = 1, last_released_at = ? WHERE guid = ?")
    .run(releasedAt, none.id);
  database.close();
  const rows = {
    prod: [
      prod.id,
      "prod",
      "3",
      String(nodeId),
      rfc3339(claimedAt),
      "-",
      "leased",
      "node-a1",
      rfc3339(expiresAt),
      // The files expire in 7 days less 2 hours: within the 7-day window.
      "expiring",
    ],
    none: [
      none.id,
      "-",
      "1",
      "-",
      "-",
      rfc3339(releasedAt),
      "free",
      "-",
      rfc3339(expiresAt),
      "expiring",
    ],
    dev: [dev.id, "dev", "0", "-", "-", "-", "free", "-", rfc3339(expiresAt), "expiring"],
  };
  return { files: { prod, none, dev }, rows, nodeId, claimedAt, releasedAt, expiresAt };
}

Deno.test("relay ls on an empty pool says so", async (t) => {
  await using dir = await tempDir();
  // `ls` never creates a database (read_only_test.ts): an empty one is made here.
  await (await openStore(dbPath(dir.path), { now: 0 })).close();
  for (
    const [args, expected] of [
      [["ls"], "license pool is empty\n"],
      [["ls", "--plain"], "license pool is empty\n"],
      [["ls", "--json"], "[]\n"],
    ] as [string[], string][]
  ) {
    await t.step(args.join(" "), async () => {
      const result = await runRelay(args, { cwd: dir.path });
      assert.equal(result.stderr, "");
      assert.equal(result.code, 0);
      assert.equal(result.stdout, expected);
    });
  }
});

Deno.test("relay ls --plain prints the reference table layout", async (t) => {
  await using dir = await tempDir();
  const { rows } = await fixture(dir.path);
  const expected = plainTable([rows.prod, rows.none, rows.dev]);

  await t.step("the exact text", async () => {
    const result = await runRelay(["ls", "--plain"], { cwd: dir.path });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.equal(result.stdout, expected);
    const lines = result.stdout.split("\n");
    assert.equal(lines.length, 6);
    assert.ok(
      lines[0].startsWith(
        "| id                                   | pool | claims | node_id | last_claimed_at      |",
      ),
      lines[0],
    );
    assert.match(lines[1], /^\+-{38}\+-{6}\+-{8}\+-{9}\+-{22}\+/);
  });

  await t.step("non-terminal stdout defaults to plain", async () => {
    // runCli sets NO_COLOR=1, which asks for plain too; unset it here.
    const result = await runRelay(["ls"], { cwd: dir.path, env: { NO_COLOR: "" } });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, expected);
  });

  await t.step("a terminal gets a boxed table unless --plain", async () => {
    const runOnTerminal = async (args: string[]) => {
      let stdout = "";
      const code = await run(["--database", dbPath(dir.path), ...args], {
        stdout: (text) => (stdout += text),
        stderr: () => {},
        env: {},
        stdoutIsTerminal: true,
        stderrIsTerminal: true,
        now: () => new Date(),
      });
      assert.equal(code, 0);
      return stdout;
    };
    const boxed = await runOnTerminal(["ls"]);
    assert.notEqual(boxed, expected);
    assert.ok(boxed.includes(rows.prod[0]) && boxed.includes("node-a1"), boxed);
    assert.equal(await runOnTerminal(["ls", "--plain"]), expected);
  });
});

Deno.test("relay ls --pool lists one pool's licenses", async (t) => {
  await using dir = await tempDir();
  const { files, rows } = await fixture(dir.path);
  const ids = async (args: string[], env?: Record<string, string>) => {
    const result = await runRelay(["ls", "--json", ...args], { cwd: dir.path, env });
    assert.equal(result.code, 0, result.stderr);
    return (JSON.parse(result.stdout) as { id: string }[]).map((license) => license.id);
  };

  await t.step("--pool prod, plain", async () => {
    const result = await runRelay(["ls", "--plain", "--pool", "prod"], { cwd: dir.path });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.equal(result.stdout, plainTable([rows.prod]));
  });

  await t.step("--pool dev, JSON", async () => {
    assert.deepEqual(await ids(["--pool", "dev"]), [files.dev.id]);
  });

  await t.step("no --pool lists every license", async () => {
    assert.deepEqual(await ids([]), [files.prod.id, files.none.id, files.dev.id]);
  });

  await t.step("RELAY_POOL", async () => {
    assert.deepEqual(await ids([], { RELAY_POOL: "prod" }), [files.prod.id]);
  });

  for (
    const [name, args, env] of [
      ["an unknown --pool", ["--pool", "nope"], undefined],
      ["an unknown RELAY_POOL", [], { RELAY_POOL: "nope" }],
    ] as [string, string[], Record<string, string> | undefined][]
  ) {
    await t.step(name, async () => {
      const result = await runRelay(["ls", ...args], { cwd: dir.path, env });
      assert.equal(result.code, 1);
      assert.equal(result.stdout, "");
      assert.equal(result.stderr, "error: pool not found\n");
    });
  }
});

Deno.test("relay ls --json lists licenses with their lease state", async () => {
  await using dir = await tempDir();
  const { files, nodeId, claimedAt, releasedAt, expiresAt } = await fixture(dir.path);
  const result = await runRelay(["ls", "--json"], { cwd: dir.path });
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  assert.ok(result.stdout.endsWith("\n"));
  const licenses = JSON.parse(result.stdout);
  assert.ok(Array.isArray(licenses));
  const pick = (license: Record<string, unknown>) => ({
    id: license.id,
    pool: license.pool,
    status: license.status,
    claims: license.claims,
    node_id: license.node_id,
    node_fingerprint: license.node_fingerprint,
    last_claimed_at: license.last_claimed_at,
    last_released_at: license.last_released_at,
    file_expires_at: license.file_expires_at,
  });
  const expiry = rfc3339(expiresAt);
  assert.match(expiry, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.deepEqual(licenses.map(pick), [
    {
      id: files.prod.id,
      pool: "prod",
      status: "leased",
      claims: 3,
      node_id: nodeId,
      node_fingerprint: "node-a1",
      last_claimed_at: rfc3339(claimedAt),
      last_released_at: null,
      file_expires_at: expiry,
    },
    {
      id: files.none.id,
      pool: null,
      status: "free",
      claims: 1,
      node_id: null,
      node_fingerprint: null,
      last_claimed_at: null,
      last_released_at: rfc3339(releasedAt),
      file_expires_at: expiry,
    },
    {
      id: files.dev.id,
      pool: "dev",
      status: "free",
      claims: 0,
      node_id: null,
      node_fingerprint: null,
      last_claimed_at: null,
      last_released_at: null,
      file_expires_at: expiry,
    },
  ]);
});

Deno.test("relay ls and stat tell a lease past its stored expiry from a live one", async () => {
  await using dir = await tempDir();
  const { files } = await fixture(dir.path);
  const db = dbPath(dir.path);
  const now = Math.floor(Date.now() / 1000);
  // files.dev was free: now leased, and expired a minute ago.
  lease(db, files.dev.id, "node-gone", { heartbeatAt: now - 120, expiresAt: now - 60 });
  const listed = JSON.parse((await runRelay(["ls", "--json"], { cwd: dir.path })).stdout);
  const byId = new Map(listed.map((license: Record<string, unknown>) => [license.id, license]));
  const gone = byId.get(files.dev.id) as Record<string, unknown>;
  assert.equal(gone.status, "expired");
  assert.equal(gone.lease_expires_at, rfc3339(now - 60));
  assert.equal((byId.get(files.prod.id) as Record<string, unknown>).status, "leased");
  const plain = await runRelay(["ls", "--plain"], { cwd: dir.path });
  const row = plain.stdout.split("\n").find((line) => line.includes(files.dev.id))!;
  assert.match(row, /\| expired +\| node-gone /);
  const stat = await runRelay(["stat", "--license", files.dev.id, "--json"], { cwd: dir.path });
  assert.equal(JSON.parse(stat.stdout).status, "expired");
});
