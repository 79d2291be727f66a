/**
 * `relay audit --follow` on PostgreSQL as a real process: an event whose id
 * was taken before another's but committed after it (two replicas' claims
 * racing) is printed when it commits, once, after the newer one; nothing is
 * printed twice, nor the events `--limit` left out at the start.
 *
 * @module
 */

import assert from "node:assert/strict";
import { EntityType, EventType } from "../../lib/audit.ts";
import type { TxSql } from "../../lib/storage/postgres/connect.ts";
import { mintFiles, tempDir, waitUntil } from "../helpers.ts";
import { testDatabase } from "../postgres.ts";
import { fileArgs, runRelay, spawnFollowing } from "./support.ts";

/** Writes a `license.leased` row of `licenseId`, as a replica's claim would; returns its id. */
async function leased(tx: TxSql, licenseId: number): Promise<number> {
  const [row] = await tx<{ id: number }[]>`
    INSERT INTO audit_logs (event_type_id, entity_type_id, entity_id, created_at)
    VALUES (${EventType.licenseLeased}, ${EntityType.license}, ${licenseId},
            extract(epoch FROM now())::bigint)
    RETURNING id`;
  return row.id;
}

Deno.test("relay audit --follow on PostgreSQL prints an event committed after a newer one, once", async () => {
  await using dir = await tempDir();
  await using db = await testDatabase();
  const { publicKey, files: [license] } = await mintFiles(dir.path, 1);
  const added = await runRelay(
    ["--database", db.url, "add", "--public-key", publicKey, ...fileArgs([license])],
    { cwd: dir.path },
  );
  assert.equal(added.code, 0, added.stderr);
  const [{ id: licenseId }] = await db.sql<{ id: number }[]>`SELECT id FROM licenses`;

  await using relay = spawnFollowing(["--database", db.url, "audit", "--follow", "--json"], {
    cwd: dir.path,
  });
  /** The ids printed so far, in the order printed. */
  const printed = () =>
    relay.stdout().split("\n").filter(Boolean).map((line) => JSON.parse(line).id as number);
  {
    await waitUntil(() => printed().length === 1, "the license.added event");
    const [addedId] = printed();

    // Transaction A takes id k and stays open; B takes k + 1 and commits.
    let takenByA!: (id: number) => void;
    const idOfA = new Promise<number>((resolve) => (takenByA = resolve));
    let commitA!: () => void;
    const gate = new Promise<void>((resolve) => (commitA = resolve));
    const a = db.sql.begin(async (tx) => {
      takenByA(await leased(tx, licenseId));
      await gate;
    });
    const k = await idOfA;
    const b = await db.sql.begin((tx) => leased(tx, licenseId));
    assert.equal(b, k + 1);

    await waitUntil(() => printed().includes(b), "the event committed first (k + 1)");
    assert.deepEqual(printed(), [addedId, b]);

    commitA();
    await a;
    await waitUntil(() => printed().includes(k), "the event committed last (k)");
    // One more, to see that nothing already printed comes again.
    const c = await db.sql.begin((tx) => leased(tx, licenseId));
    await waitUntil(() => printed().includes(c), "the next event");
    assert.deepEqual(printed(), [addedId, b, k, c]);

    assert.deepEqual(await relay.stop(), { code: 0, stderr: "" });
  }
});

Deno.test("relay audit --follow on PostgreSQL never prints again the events --limit left out", async () => {
  await using dir = await tempDir();
  await using db = await testDatabase();
  const { publicKey, files } = await mintFiles(dir.path, 3);
  const added = await runRelay(
    ["--database", db.url, "add", "--public-key", publicKey, ...fileArgs(files)],
    { cwd: dir.path },
  );
  assert.equal(added.code, 0, added.stderr);
  const ids = (await db.sql<{ id: number }[]>`SELECT id FROM audit_logs ORDER BY id`)
    .map((row) => row.id);
  assert.equal(ids.length, 3);
  const [{ id: licenseId }] = await db.sql<{ id: number }[]>`SELECT min(id) AS id FROM licenses`;

  await using relay = spawnFollowing(
    ["--database", db.url, "audit", "--follow", "--json", "--limit", "1"],
    { cwd: dir.path },
  );
  const printed = () =>
    relay.stdout().split("\n").filter(Boolean).map((line) => JSON.parse(line).id as number);
  {
    await waitUntil(() => printed().length === 1, "the latest event");
    const next = await db.sql.begin((tx) => leased(tx, licenseId));
    await waitUntil(() => printed().includes(next), "the new event");
    // The two older events, inside the window, stay left out.
    assert.deepEqual(printed(), [ids[2], next]);
    assert.deepEqual(await relay.stop(), { code: 0, stderr: "" });
  }
});
