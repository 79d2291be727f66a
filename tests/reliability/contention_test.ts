/**
 * Reliability: no over-leasing under contention.
 *
 * Real `relay serve` processes on 127.0.0.1 (port 0), real HTTP clients, and
 * the database read back with `node:sqlite` to check that every acknowledged
 * lease exists and that no license is ever leased twice: a burst of 500
 * clients against 100 licenses for each strategy, ~5 s of churn, two servers
 * on one file, and two servers while `relay add` and `relay del` write to it.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  addMinted,
  dbPath,
  FREE_COUNT_MISMATCHES,
  type MintedFile,
  mintFiles,
  prng,
  query,
  runCli,
  type ServerProcess,
  startServer,
  tempDir,
} from "../helpers.ts";

/** Licenses every scenario starts with. */
const LICENSES = 100;
/** Clients of a burst. */
const CLIENTS = 500;

/** What a client got back: status and parsed JSON body (null when empty). */
interface Answer {
  status: number;
  body: Record<string, unknown> | null;
}

/** One request, read to the end; every request gives up after 30 s. */
async function send(url: string, method: "PUT" | "DELETE", fingerprint: string): Promise<Answer> {
  const response = await fetch(`${url}/v1/nodes/${fingerprint}`, {
    method,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : JSON.parse(text) };
}

/** One burst client's outcome. */
interface BurstResult {
  fingerprint: string;
  status: number;
  key?: string;
}

/**
 * `count` clients with distinct fingerprints, each sending one claim, all
 * started in the same tick; client `i` talks to `urls[i % urls.length]`.
 * `startAt(i)` optionally delays a client by that many ms.
 */
async function burst(
  urls: string[],
  prefix: string,
  count: number,
  startAt?: (i: number) => number,
): Promise<{ results: BurstResult[]; peakInFlight: number }> {
  let inFlight = 0;
  let peakInFlight = 0;
  const results = await Promise.all(
    Array.from({ length: count }, async (_, i): Promise<BurstResult> => {
      const delay = startAt?.(i) ?? 0;
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      const fingerprint = `${prefix}-${i}`;
      inFlight++;
      peakInFlight = Math.max(peakInFlight, inFlight);
      try {
        const answer = await send(urls[i % urls.length], "PUT", fingerprint);
        const key = answer.status === 201 ? String(answer.body?.license_key) : undefined;
        return { fingerprint, status: answer.status, key };
      } finally {
        inFlight--;
      }
    }),
  );
  return { results, peakInFlight };
}

/** How many of each status. */
function tally(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

/** A leased license as the database holds it. */
interface LeaseRow {
  license_id: number;
  key: string;
  node_id: number;
  fingerprint: string;
  deactivated_at: number | null;
}

function leaseRows(db: string): LeaseRow[] {
  return query<LeaseRow>(
    db,
    `SELECT l.id AS license_id, l.key, l.node_id, n.fingerprint, n.deactivated_at
     FROM licenses l LEFT JOIN nodes n ON n.id = l.node_id
     WHERE l.node_id IS NOT NULL ORDER BY l.id`,
  );
}

function countOf(db: string, sql: string, ...params: (string | number)[]): number {
  return Number(query<{ n: number }>(db, sql, ...params)[0].n);
}

/**
 * The database agrees with the clients of a burst: exactly the 201s lease,
 * each to its own active node, with the key that client received, and one
 * `license.leased` and `node.activated` record each.
 */
function assertBurstConsistent(db: string, results: BurstResult[], expected: number): void {
  const created = results.filter((r) => r.status === 201);
  assert.equal(created.length, expected, "201s");
  const keys = created.map((r) => r.key);
  assert.equal(new Set(keys).size, created.length, "every 201 carries a distinct license key");

  const rows = leaseRows(db);
  assert.equal(rows.length, expected, "licenses with node_id set");
  assert.equal(new Set(rows.map((r) => r.node_id)).size, rows.length, "node_ids distinct");
  for (const row of rows) {
    assert.ok(row.fingerprint !== null, `license ${row.license_id}: node ${row.node_id} exists`);
    assert.equal(row.deactivated_at, null, `license ${row.license_id}: node is active`);
  }
  const leasedTo = new Map(rows.map((r) => [r.fingerprint, r.key]));
  for (const r of created) {
    assert.equal(leasedTo.get(r.fingerprint), r.key, `${r.fingerprint}: its 201 key is its lease`);
  }
  assert.equal(
    countOf(db, "SELECT count(*) AS n FROM nodes WHERE deactivated_at IS NULL"),
    expected,
    "active nodes are exactly the 201s",
  );
  assert.equal(
    countOf(db, "SELECT count(*) AS n FROM audit_logs WHERE event_type_id = 3"),
    expected,
    "license.leased records",
  );
  assert.equal(
    countOf(db, "SELECT count(*) AS n FROM audit_logs WHERE event_type_id = 7"),
    expected,
    "node.activated records",
  );
  assertFreeCountsConsistent(db);
}

/** `free_counts` counts exactly the free licenses of each pool. */
function assertFreeCountsConsistent(db: string): void {
  assert.deepEqual(query(db, FREE_COUNT_MISMATCHES), [], "free_counts = free licenses");
}

/** No "database is locked" (or any other lock error) anywhere in this output. */
function assertNoLockErrors(label: string, output: string): void {
  assert.doesNotMatch(output, /locked|SQLITE_BUSY/i, `${label} reported a lock error`);
}

/** Stops a server gracefully and checks it exited 0 without lock errors or failed requests. */
async function stopCleanly(server: ServerProcess, label: string): Promise<void> {
  const { status, stdout, stderr } = await server.stop("SIGTERM");
  assert.equal(status.code, 0, `${label} exit code; stderr: ${stderr}`);
  assertNoLockErrors(`${label} stdout`, stdout);
  assertNoLockErrors(`${label} stderr`, stderr);
  assert.doesNotMatch(stdout, /"level":"error"/, `${label} logged an error`);
}

Deno.test("500 concurrent claims against 100 licenses lease exactly 100, for every strategy", async (t) => {
  // One database with 100 licenses, copied for each strategy.
  await using template = await tempDir();
  await addMinted(template.path, LICENSES);
  for (const strategy of ["fifo", "lifo", "rand"]) {
    await t.step(strategy, async () => {
      await using dir = await tempDir();
      await Deno.copyFile(dbPath(template.path), dbPath(dir.path));
      await using server = await startServer(["--strategy", strategy], { cwd: dir.path });
      const started = performance.now();
      const { results, peakInFlight } = await burst([server.url], strategy, CLIENTS);
      const elapsed = Math.round(performance.now() - started);
      assert.equal(peakInFlight, CLIENTS, "all clients in flight at once");
      assert.deepEqual(tally(results.map((r) => r.status)), { 201: 100, 410: 400 });
      assertBurstConsistent(dbPath(dir.path), results, LICENSES);
      await stopCleanly(server, `${strategy} server`);
      console.log(`${strategy}: ${CLIENTS} claims in ${elapsed} ms`);
    });
  }
});

Deno.test("~5 s of churn by 150 clients never leases more than 100 licenses", async () => {
  await using dir = await tempDir();
  await addMinted(dir.path, LICENSES);
  const db = dbPath(dir.path);
  await using server = await startServer(["--strategy", "rand"], { cwd: dir.path });

  const clients = 150;
  // RELAY_SOAK_SECONDS lengthens the churn for a soak run.
  const durationMs = Number(Deno.env.get("RELAY_SOAK_SECONDS") ?? 5) * 1000;
  const maxRequestsPerClient = Math.max(5_000, durationMs);
  const random = prng(0x5eed);
  const holders = new Map<string, string>(); // fingerprint -> license key
  const counts: Record<string, number> = {};
  const errors: string[] = [];
  let peakHolders = 0;
  const deadline = Date.now() + durationMs;
  const running = () => Date.now() < deadline && errors.length === 0;

  const client = async (fingerprint: string) => {
    for (let n = 0; n < maxRequestsPerClient && running(); n++) {
      const holds = holders.has(fingerprint);
      // Holders heartbeat (70%) or release; others claim (80%) or release anyway.
      const method = (holds ? random() < 0.7 : random() < 0.8) ? "PUT" : "DELETE";
      // A holder that sends DELETE has given its lease up: the server may hand
      // the license to another client whose 201 arrives before this 204
      // (both in one group commit), so it stops counting as a holder now.
      const releasing = holds && method === "DELETE";
      if (releasing) holders.delete(fingerprint);
      const { status, body } = await send(server.url, method, fingerprint);
      const label = `${holds ? "holder" : "non-holder"} ${method} ${status}`;
      counts[label] = (counts[label] ?? 0) + 1;
      if (holds && method === "PUT" && status === 202) continue;
      if (releasing && status === 204) {
        continue;
      } else if (!holds && method === "PUT" && status === 201) {
        holders.set(fingerprint, String(body?.license_key));
        peakHolders = Math.max(peakHolders, holders.size);
        if (holders.size > LICENSES) errors.push(`${holders.size} acknowledged holders`);
      } else if (!(!holds && method === "PUT" && status === 410) && !(!holds && status === 404)) {
        errors.push(`${fingerprint}: ${label} ${JSON.stringify(body)}`);
      }
    }
  };

  // Samples the database every ~100 ms; each sample is one statement, so one snapshot.
  const samples: Record<string, number>[] = [];
  const sampler = (async () => {
    while (running()) {
      const [sample] = query<Record<string, number>>(
        db,
        `SELECT
           (SELECT count(*) FROM licenses WHERE node_id IS NOT NULL) AS leased,
           (SELECT count(DISTINCT node_id) FROM licenses WHERE node_id IS NOT NULL) AS holding_nodes,
           (SELECT count(*) FROM licenses WHERE node_id IS NULL) AS free,
           (SELECT IFNULL(sum(free), 0) FROM free_counts WHERE level = 1) AS counted_free,
           (SELECT count(*) FROM nodes WHERE deactivated_at IS NULL) AS active_nodes,
           (SELECT count(*) FROM licenses l JOIN nodes n ON n.id = l.node_id
             WHERE n.deactivated_at IS NOT NULL) AS held_by_inactive`,
      );
      samples.push(sample);
      const fine = sample.leased <= LICENSES && sample.holding_nodes === sample.leased &&
        sample.leased + sample.free === LICENSES && sample.counted_free === sample.free &&
        sample.active_nodes === sample.leased && sample.held_by_inactive === 0;
      if (!fine) errors.push(`inconsistent sample ${JSON.stringify(sample)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();

  await Promise.all([
    ...Array.from({ length: clients }, (_, i) => client(`churn-${i}`)),
    sampler,
  ]);
  assert.deepEqual(errors, []);
  console.log(
    `churn: ${samples.length} samples, peak ${peakHolders} holders, ${JSON.stringify(counts)}`,
  );
  assert.ok(samples.length >= 20, `${samples.length} samples taken`);
  assert.ok(Math.max(...samples.map((s) => s.leased)) > 0, "leases seen while sampling");
  for (
    const label of [
      "non-holder PUT 201",
      "non-holder PUT 410",
      "holder PUT 202",
      "holder DELETE 204",
      "non-holder DELETE 404",
    ]
  ) {
    assert.ok((counts[label] ?? 0) > 0, `churn produced "${label}"`);
  }

  // At the end the clients' holders are exactly the database's, with their keys.
  const rows = leaseRows(db);
  assert.deepEqual(
    new Map(rows.map((r) => [r.fingerprint, r.key])),
    holders,
    "holders according to the clients = holders according to the database",
  );
  for (const row of rows) assert.equal(row.deactivated_at, null, `${row.fingerprint} active`);
  assert.equal(new Set(rows.map((r) => r.node_id)).size, rows.length, "no node holds two licenses");
  assertFreeCountsConsistent(db);
  await stopCleanly(server, "churn server");
});

Deno.test("two relay serve processes on one database: 500 claims lease exactly 100", async () => {
  await using dir = await tempDir();
  await addMinted(dir.path, LICENSES);
  await using first = await startServer(["--strategy", "fifo"], { cwd: dir.path });
  await using second = await startServer(["--strategy", "fifo"], { cwd: dir.path });
  const { results, peakInFlight } = await burst([first.url, second.url], "two", CLIENTS);
  assert.equal(peakInFlight, CLIENTS);
  assert.deepEqual(tally(results.map((r) => r.status)), { 201: 100, 410: 400 });
  assertBurstConsistent(dbPath(dir.path), results, LICENSES);
  // Which server takes the write lock first is up to the race (with group
  // commit one server may lease all 100 in one transaction); what matters is
  // that both see and change the same leases: each lease is released through
  // the server that did not grant it.
  const releases = await Promise.all(
    results.map((r, i) => ({ ...r, i })).filter((r) => r.status === 201).map((r) =>
      send([second.url, first.url][r.i % 2], "DELETE", r.fingerprint)
    ),
  );
  assert.deepEqual(tally(releases.map((r) => r.status)), { 204: 100 });
  assert.equal(
    query(dbPath(dir.path), "SELECT count(*) AS n FROM licenses WHERE node_id IS NOT NULL")[0].n,
    0,
  );
  await stopCleanly(first, "first server");
  await stopCleanly(second, "second server");
});

Deno.test("two servers, relay add and relay del on one database during 500 claims stay consistent", async () => {
  await using dir = await tempDir();
  const initial = await addMinted(dir.path, LICENSES);
  const db = dbPath(dir.path);
  // Ten more licenses, added to be deleted while the claims run; with fifo they
  // are the last free ones, so the claims may or may not reach them first.
  const doomed: MintedFile[] = await addMinted(dir.path, 10);
  const { publicKey, files: extra } = await mintFiles(dir.path, 20);
  const addArgs = ["add", "--public-key", publicKey];
  for (const file of extra) addArgs.push("--file", file.path, "--key", file.key);
  const delArgs = ["del", "--license", doomed.map((f) => f.id).join(",")];

  await using first = await startServer(["--strategy", "fifo"], { cwd: dir.path });
  await using second = await startServer(["--strategy", "fifo"], { cwd: dir.path });
  // Each CLI run takes ~0.1-0.4 s: spread the clients over 0.5 s so that `add`
  // and `del` write while claims are still arriving, and `del` races the
  // ~100th claim for its licenses (both outcomes occur; both are checked).
  const random = prng(0xadd);
  const delays = Array.from({ length: CLIENTS }, () => Math.floor(random() * 500));
  const t0 = performance.now();
  const finished = <T>(promise: Promise<T>) =>
    promise.then((value) => ({ value, ms: Math.round(performance.now() - t0) }));
  const [{ results }, { value: add, ms: addMs }, { value: del, ms: delMs }] = await Promise.all([
    burst([first.url, second.url], "mixed", CLIENTS, (i) => delays[i]),
    finished(runCli(addArgs, { cwd: dir.path })),
    finished(runCli(delArgs, { cwd: dir.path })),
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
    query<{ guid: string }>(db, "SELECT guid FROM licenses").map((r) => r.guid),
  );
  for (const file of [...initial, ...extra]) assert.ok(guids.has(file.id), `${file.id} exists`);
  const doomedLeft = doomed.filter((f) => guids.has(f.id));
  const removedRecords = countOf(
    db,
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
    const leasedDoomed = countOf(
      db,
      `SELECT count(*) AS n FROM licenses WHERE node_id IS NOT NULL AND guid IN (${
        doomed.map(() => "?").join(",")
      })`,
      ...doomed.map((f) => f.id),
    );
    assert.ok(leasedDoomed > 0, "a license that del refused is leased");
  }

  const created = results.filter((r) => r.status === 201).length;
  const leased = leaseRows(db).length;
  assert.equal(created, leased, "201s = licenses that exist and are leased");
  assert.ok(leased <= guids.size);
  assertBurstConsistent(db, results, created);
  console.log(
    `add/del: claims over ${burstMs} ms, add done at ${addMs} ms, del done at ${delMs} ms ` +
      `(exit ${del.code}), ${created} leases of ${guids.size} licenses, ${
        JSON.stringify(statuses)
      }`,
  );
  await stopCleanly(first, "first server");
  await stopCleanly(second, "second server");
});
