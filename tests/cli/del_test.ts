/**
 * `relay del`: delete licenses, all or nothing, leased ones only with --force.
 *
 * @module
 */

import assert from "node:assert/strict";
import { auditTrail, type MintedFile, mintFiles, query, tempDir } from "../helpers.ts";
import { auditCount, dbPath, fileArgs, lease, rowId, runRelay, storedGuids } from "./support.ts";

function deletedLines(guids: readonly string[]): string {
  return guids.map((guid) => `license deleted successfully: ${guid}\n`).join("");
}

/** A folder with `count` licenses added (to `pool` if given). */
async function poolWith(
  dir: string,
  count: number,
  pool?: string,
): Promise<{ db: string; files: MintedFile[] }> {
  const { publicKey, files } = await mintFiles(dir, count);
  const result = await runRelay(
    ["add", ...fileArgs(files), "--public-key", publicKey, ...(pool ? ["--pool", pool] : [])],
    { cwd: dir },
  );
  assert.equal(result.code, 0, result.stderr);
  return { db: dbPath(dir), files };
}

Deno.test("relay del deletes licenses given by repeated flags and comma lists", async (t) => {
  await using dir = await tempDir();
  const { db, files } = await poolWith(dir.path, 5, "prod");
  const [a, b, c, d, e] = files;
  const ids = Object.fromEntries(files.map((file) => [file.id, rowId(db, file.id)]));
  const poolId = query<{ id: number }>(db, "SELECT id FROM pools WHERE name = 'prod'")[0].id;
  const trailBefore = auditTrail(db);
  assert.equal(trailBefore.length, 6);

  await t.step("repeated --license", async () => {
    const result = await runRelay(["del", "--license", b.id, "--license", a.id], { cwd: dir.path });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.equal(result.stdout, deletedLines([b.id, a.id]));
    assert.deepEqual(await storedGuids(db), [c.id, d.id, e.id]);
    assert.deepEqual(auditTrail(db).slice(6), [
      ["license.removed", "license", ids[b.id], poolId],
      ["license.removed", "license", ids[a.id], poolId],
    ]);
  });

  await t.step("a comma list", async () => {
    const result = await runRelay(["del", "--license", `${c.id},${e.id}`], { cwd: dir.path });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.equal(result.stdout, deletedLines([c.id, e.id]));
    assert.deepEqual(await storedGuids(db), [d.id]);
    assert.deepEqual(auditTrail(db).slice(8), [
      ["license.removed", "license", ids[c.id], poolId],
      ["license.removed", "license", ids[e.id], poolId],
    ]);
  });

  await t.step("a license outside any pool keeps a null pool_id", async () => {
    await using other = await tempDir();
    const { db, files } = await poolWith(other.path, 1);
    const id = rowId(db, files[0].id);
    const result = await runRelay(["del", "--license", files[0].id], { cwd: other.path });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, deletedLines([files[0].id]));
    assert.deepEqual(auditTrail(db), [
      ["license.added", "license", id, null],
      ["license.removed", "license", id, null],
    ]);
  });
});

Deno.test("relay del refuses an unknown id and deletes nothing", async (t) => {
  await using dir = await tempDir();
  const { db, files } = await poolWith(dir.path, 1);
  const unknown = "00000000-0000-4000-8000-000000000000";

  const cases: [string, string[]][] = [
    ["an unknown id alone", ["--license", unknown]],
    ["a good id and an unknown one", ["--license", files[0].id, "--license", unknown]],
    ["a comma list with an unknown id", ["--license", `${files[0].id},${unknown}`]],
  ];
  for (const [name, args] of cases) {
    await t.step(name, async () => {
      const result = await runRelay(["del", ...args], { cwd: dir.path });
      assert.equal(result.code, 1);
      assert.equal(result.stdout, "");
      assert.ok(result.stderr.startsWith("error: "), result.stderr);
      assert.ok(result.stderr.includes(`"${unknown}"`), result.stderr);
      assert.deepEqual(await storedGuids(db), [files[0].id]);
      assert.equal(await auditCount(db), 1);
    });
  }
});

Deno.test("relay del refuses a leased license unless --force", async (t) => {
  await using dir = await tempDir();
  const { db, files } = await poolWith(dir.path, 2, "prod");
  const [leased, free] = files;
  const poolId = query<{ id: number }>(db, "SELECT id FROM pools WHERE name = 'prod'")[0].id;
  const leasedId = rowId(db, leased.id);
  const now = Math.floor(Date.now() / 1000);
  lease(db, leased.id, "node-fp-7f3a", { heartbeatAt: now, claimedAt: now });

  for (
    const [name, args] of [
      ["the leased license alone", ["--license", leased.id]],
      ["a free and a leased license", ["--license", `${free.id},${leased.id}`]],
    ] as [string, string[]][]
  ) {
    await t.step(`without --force: ${name}`, async () => {
      const result = await runRelay(["del", ...args], { cwd: dir.path });
      assert.equal(result.code, 1);
      assert.equal(result.stdout, "");
      assert.ok(result.stderr.startsWith("error: "), result.stderr);
      assert.ok(result.stderr.includes("node-fp-7f3a"), result.stderr);
      assert.ok(result.stderr.includes("--force"), result.stderr);
      assert.deepEqual(await storedGuids(db), [leased.id, free.id]);
      assert.equal(await auditCount(db), 3);
    });
  }

  await t.step("with --force", async () => {
    const result = await runRelay(["del", "--license", leased.id, "--force"], { cwd: dir.path });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.equal(result.stdout, deletedLines([leased.id]));
    assert.deepEqual(await storedGuids(db), [free.id]);
    assert.deepEqual(auditTrail(db).slice(3), [
      ["license.released", "license", leasedId, poolId],
      ["license.removed", "license", leasedId, poolId],
    ]);
  });
});

Deno.test("relay del deletes a license whose lease has expired without --force, ending the lease first", async () => {
  await using dir = await tempDir();
  const { db, files } = await poolWith(dir.path, 2, "prod");
  const [expired, live] = files;
  const expiredId = rowId(db, expired.id);
  const poolId = query<{ id: number }>(db, "SELECT id FROM pools WHERE name = 'prod'")[0].id;
  const now = Math.floor(Date.now() / 1000);
  const nodeId = lease(db, expired.id, "node-gone", {
    heartbeatAt: now - 120,
    claimedAt: now - 120,
    expiresAt: now - 60,
  });
  lease(db, live.id, "node-live", { heartbeatAt: now, claimedAt: now, expiresAt: now + 60 });

  const refused = await runRelay(["del", "--license", live.id], { cwd: dir.path });
  assert.equal(refused.code, 1, "a live lease still needs --force");
  assert.ok(refused.stderr.includes("node-live"), refused.stderr);

  const result = await runRelay(["del", "--license", expired.id], { cwd: dir.path });
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  assert.equal(result.stdout, deletedLines([expired.id]));
  assert.deepEqual(await storedGuids(db), [live.id]);
  assert.deepEqual(auditTrail(db).slice(3), [
    ["license.lease_expired", "license", expiredId, poolId],
    ["node.culled", "node", nodeId, poolId],
    ["license.removed", "license", expiredId, poolId],
  ]);
  assert.equal(
    query<{ d: number | null }>(db, "SELECT deactivated_at AS d FROM nodes WHERE id = ?", nodeId)[0]
      .d !== null,
    true,
    "the node that held it is deactivated",
  );
});

Deno.test("relay del requires --license", async () => {
  await using dir = await tempDir();
  const result = await runRelay(["del"], { cwd: dir.path });
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "");
  assert.ok(result.stderr.startsWith("error:"), result.stderr);
  assert.ok(result.stderr.includes("--license"), result.stderr);
});
