/**
 * Reliability: several `relay serve` processes on one database, on every
 * engine (SQLite: two processes on one file; PostgreSQL: three replicas),
 * never lease a license twice: a burst of 500 claims spread over them, each
 * lease released through another server than the one that granted it, and
 * the same burst while `relay add` and `relay del` write to the database.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type MintedFile, mintFiles, prng, runCli } from "../helpers.ts";
import { type Backend, backendDatabase, BACKENDS } from "./backends.ts";
import {
  assertBurstConsistent,
  assertNoLockErrors,
  burst,
  CLIENTS,
  leaseRows,
  LICENSES,
  send,
  stopAllCleanly,
  tally,
} from "./contention_support.ts";

/** Servers on one database: two SQLite processes, three PostgreSQL replicas. */
function serversOf(backend: Backend): number {
  return backend === "postgres" ? 3 : 2;
}

for (const backend of BACKENDS) {
  const count = serversOf(backend);
  const on = `${backend}, ${count} servers`;

  Deno.test(`several relay serve processes on one database: 500 claims lease exactly 100 (${on})`, async () => {
    await using db = await backendDatabase(backend);
    await db.add(LICENSES);
    const servers = await db.replicas(count, ["--strategy", "fifo"]);
    const urls = servers.map((s) => s.url);
    const { results, peakInFlight } = await burst(urls, "multi", CLIENTS);
    assert.equal(peakInFlight, CLIENTS);
    assert.deepEqual(tally(results.map((r) => r.status)), { 201: 100, 410: 400 });
    await assertBurstConsistent(db, results, LICENSES);
    // Which server leases what is up to the race (with SQLite's group commit
    // one server may lease all 100 in one transaction); what matters is that
    // all see and change the same leases: each lease is released through
    // the next server after the one that granted it.
    const releases = await Promise.all(
      results.map((r, i) => ({ ...r, i })).filter((r) => r.status === 201).map((r) =>
        send(urls[(r.i + 1) % urls.length], "DELETE", r.fingerprint)
      ),
    );
    assert.deepEqual(tally(releases.map((r) => r.status)), { 204: 100 });
    assert.equal(await db.count("SELECT count(*) AS n FROM licenses WHERE node_id IS NOT NULL"), 0);
    await stopAllCleanly(servers, "server");
  });

  Deno.test(`several servers, relay add and relay del on one database during 500 claims stay consistent (${on})`, async () => {
    await using db = await backendDatabase(backend);
    const initial = await db.add(LICENSES);
    // Ten more licenses, added to be deleted while the claims run; with fifo they
    // are the last free ones, so the claims may or may not reach them first.
    const doomed: MintedFile[] = await db.add(10);
    const { publicKey, files: extra } = await mintFiles(db.dir, 20);
    const addArgs = ["add", "--database", db.database, "--public-key", publicKey];
    for (const file of extra) addArgs.push("--file", file.path, "--key", file.key);
    const delArgs = [
      "del",
      "--database",
      db.database,
      "--license",
      doomed.map((f) => f.id).join(","),
    ];

    const servers = await db.replicas(count, ["--strategy", "fifo"]);
    // Each CLI run takes ~0.1-0.4 s: spread the clients over 0.5 s so that `add`
    // and `del` write while claims are still arriving, and `del` races the
    // ~100th claim for its licenses (both outcomes occur; both are checked).
    const random = prng(0xadd);
    const delays = Array.from({ length: CLIENTS }, () => Math.floor(random() * 500));
    const t0 = performance.now();
    const finished = <T>(promise: Promise<T>) =>
      promise.then((value) => ({ value, ms: Math.round(performance.now() - t0) }));
    const [{ results }, { value: add, ms: addMs }, { value: del, ms: delMs }] = await Promise.all([
      burst(servers.map((s) => s.url), "mixed", CLIENTS, (i) => delays[i]),
      finished(runCli(addArgs, { cwd: db.dir })),
      finished(runCli(delArgs, { cwd: db.dir })),
    ]);
    const burstMs = Math.round(performance.now() - t0);

    assertNoLockErrors("relay add", add.stdout + add.stderr);
    assertNoLockErrors("relay del", del.stdout + del.stderr);
    assert.equal(add.code, 0, `relay add: ${add.stderr}`);
    assert.ok(del.code === 0 || del.code === 1, `relay del exit ${del.code}: ${del.stderr}`);
    const statuses = tally(results.map((r) => r.status));
    assert.deepEqual(
      Object.keys(statuses).filter((s) => s !== "201" && s !== "410"),
      [],
      `only 201 and 410: ${JSON.stringify(statuses)}`,
    );

    const guids = new Set(
      (await db.rows<{ guid: string }>("SELECT guid FROM licenses")).map((r) => r.guid),
    );
    for (const file of [...initial, ...extra]) assert.ok(guids.has(file.id), `${file.id} exists`);
    const doomedLeft = doomed.filter((f) => guids.has(f.id));
    const removedRecords = await db.count(
      "SELECT count(*) AS n FROM audit_logs WHERE event_type_id = 2",
    );
    if (del.code === 0) {
      // Deleted all ten before any of them was leased.
      assert.equal(doomedLeft.length, 0, "del exit 0 deleted all ten");
      assert.equal(removedRecords, 10, "ten license.removed records");
      assert.equal(guids.size, 120);
    } else {
      // One of them was leased first: all or nothing, so nothing was deleted.
      assert.match(del.stderr, /is leased by node/);
      assert.equal(doomedLeft.length, 10, "del exit 1 deleted nothing");
      assert.equal(removedRecords, 0, "no license.removed records");
      assert.equal(guids.size, 130);
      const leasedDoomed = await db.count(
        `SELECT count(*) AS n FROM licenses WHERE node_id IS NOT NULL AND guid IN (${
          doomed.map(() => "?").join(",")
        })`,
        ...doomed.map((f) => f.id),
      );
      assert.ok(leasedDoomed > 0, "a license that del refused is leased");
    }

    const created = results.filter((r) => r.status === 201).length;
    const leased = (await leaseRows(db)).length;
    assert.equal(created, leased, "201s = licenses that exist and are leased");
    assert.ok(leased <= guids.size);
    await assertBurstConsistent(db, results, created);
    console.log(
      `${backend} add/del: claims over ${burstMs} ms, add done at ${addMs} ms, del done at ` +
        `${delMs} ms (exit ${del.code}), ${created} leases of ${guids.size} licenses, ${
          JSON.stringify(statuses)
        }`,
    );
    await stopAllCleanly(servers, "server");
  });
}
