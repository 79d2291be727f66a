/**
 * `GET /metrics` of the real server: the output passes `promtool check
 * metrics`, its counters count what the requests did, and its license gauge
 * agrees with the database after claims, releases, expiries and an
 * operator's release. The server runs in-process on a clock the test moves.
 *
 * @module
 */

import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import {
  addMinted,
  dbPath,
  type MintedFile,
  mintFiles,
  query,
  runInProcess,
  startServer,
  tempDir,
} from "../helpers.ts";
import { call, claim, release } from "./http_support.ts";
import { FakeClock, serveInProcess } from "./in_process.ts";
import { assertPromtoolAccepts, samples } from "./metrics_support.ts";

const TTL = 30;

/** Adds one minted license whose file expires `ttl` seconds from now, to `pool`. */
async function addExpiring(dir: string, pool: string, ttl: number): Promise<MintedFile> {
  const { publicKey, files } = await mintFiles(dir, 1, { ttl });
  const [file] = files;
  const args = ["add", "--public-key", publicKey, "--file", file.path, "--key", file.key];
  const result = await runInProcess(
    [...args, "--pool", pool, "--database", dbPath(dir)],
    { now: new Date() },
  );
  assert.equal(result.code, 0, result.stderr);
  return file;
}

/** `GET /metrics`, checked for status, type and promtool; its samples. */
async function scrape(server: { url: string; client: Deno.HttpClient }) {
  const response = await fetch(`${server.url}/metrics`, { client: server.client });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  assert.equal(
    response.headers.get("Content-Type"),
    "text/plain; version=0.0.4; charset=utf-8",
  );
  await assertPromtoolAccepts(text);
  return { text, values: samples(text) };
}

/** The `relay_licenses` series of one pool as `{ leased, free, expired }`. */
function gauge(values: Map<string, number>, pool: string) {
  const state = (name: string) => values.get(`relay_licenses{pool="${pool}",state="${name}"}`);
  return { leased: state("leased"), free: state("free"), expired: state("expired") };
}

/** Licenses of a pool ("" for none) with a node, counted in the database itself. */
function leasedInDb(db: string, pool: string): number {
  return query<{ n: number }>(
    db,
    `SELECT count(*) AS n FROM licenses l LEFT JOIN pools p ON p.id = l.pool_id
     WHERE l.node_id IS NOT NULL AND IFNULL(p.name, '') = ?`,
    pool,
  )[0].n;
}

Deno.test("GET /metrics counts claims, releases, expiries and denials", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const poolA = await addMinted(dir.path, 2, { pool: "a" });
  const [fileB] = [await addExpiring(dir.path, "b", 3600)];
  const [loose] = await addMinted(dir.path, 1);
  const clock = new FakeClock();
  const t0 = clock.seconds;
  // The reaper never runs here: expired leases are met by requests.
  await using server = await serveInProcess(["--ttl", `${TTL}s`, "--cull-interval", "1h"], {
    database: db,
    clock,
  });
  const statuses: number[] = [];
  const put = async (fp: string, pool?: string) =>
    statuses.push((await claim(server, fp, pool)).status);

  await t.step("claims and a release by the node", async () => {
    await put("node-fp-1", "a"); // 201
    await put("node-fp-2", "a"); // 201
    await put("node-fp-3", "a"); // 410: a has two licenses
    await put("node-fp-1", "a"); // 202
    await put("node-fp-1", "b"); // 409: it leases in a
    await put("node-fp-4"); // 201, no pool
    statuses.push((await release(server, "node-fp-2", "a")).status); // 204
    assert.deepEqual(statuses, [201, 201, 410, 202, 409, 201, 204]);

    const { text, values } = await scrape(server);
    assert.equal(values.get(`relay_build_info{version="${denoJson.version}"}`), 1);
    assert.deepEqual(gauge(values, "a"), { leased: 1, free: 1, expired: 0 });
    assert.deepEqual(gauge(values, "b"), { leased: 0, free: 1, expired: 0 });
    assert.deepEqual(gauge(values, ""), { leased: 1, free: 0, expired: 0 });
    assert.equal(leasedInDb(db, "a"), 1);
    assert.equal(leasedInDb(db, ""), 1);
    const expected: Record<string, number> = {
      'relay_claims_total{pool="a",result="created"}': 2,
      'relay_claims_total{pool="a",result="extended"}': 1,
      'relay_claims_total{pool="a",result="exhausted"}': 1,
      'relay_claims_total{pool="a",result="conflict"}': 0,
      'relay_claims_total{pool="b",result="conflict"}': 1,
      'relay_claims_total{pool="",result="created"}': 1,
      'relay_denials_total{pool="a"}': 1,
      'relay_denials_total{pool="b"}': 0,
      'relay_releases_total{pool="a",reason="node"}': 1,
      'relay_releases_total{pool="a",reason="expired"}': 0,
      'relay_releases_total{pool="a",reason="operator"}': 0,
      'relay_request_duration_seconds_count{route="/v1/nodes/{fingerprint}",status="2xx"}': 5,
      'relay_request_duration_seconds_count{route="/v1/nodes/{fingerprint}",status="4xx"}': 2,
    };
    for (const [series, value] of Object.entries(expected)) {
      assert.equal(values.get(series), value, series);
    }
    // Labels carry route patterns and pools, never fingerprints, keys or ids.
    for (const secret of [...poolA, fileB, loose].flatMap((file) => [file.key, file.id])) {
      assert.ok(!text.includes(secret), `no key or license id in the metrics`);
    }
    assert.ok(!text.includes("node-fp"), "no fingerprint in the metrics");
  });

  await t.step("leases that expire: met by a claim, and reaped by one", async () => {
    clock.seconds = t0 + TTL + 1;
    // node-fp-1's lease expired: it is ended as expired, and the node gets a new one.
    await put("node-fp-1", "a"); // 201
    await put("node-fp-5", "a"); // 201: a is full again
    clock.seconds = t0 + 2 * TTL + 2;
    // a has no free license: the claim reaps every expired lease first (a: 2, none: 1).
    await put("node-fp-6", "a"); // 201
    assert.deepEqual(statuses.slice(-3), [201, 201, 201]);
    const { values } = await scrape(server);
    assert.equal(values.get('relay_releases_total{pool="a",reason="expired"}'), 3);
    assert.equal(values.get('relay_releases_total{pool="",reason="expired"}'), 1);
    assert.equal(values.get('relay_claims_total{pool="a",result="created"}'), 5);
    assert.deepEqual(gauge(values, "a"), { leased: 1, free: 1, expired: 0 });
    assert.deepEqual(gauge(values, ""), { leased: 0, free: 1, expired: 0 });
    assert.equal(leasedInDb(db, "a"), 1);
    assert.equal(leasedInDb(db, ""), 0);
  });

  await t.step("a release by an operator, read from the audit log", async () => {
    const [{ guid }] = query<{ guid: string }>(
      db,
      "SELECT guid FROM licenses WHERE node_id IS NOT NULL",
    );
    const released = await runInProcess(
      ["release", "--license", guid, "--database", db],
      { now: clock.now() },
    );
    assert.equal(released.code, 0, released.stderr);
    const { values } = await scrape(server);
    assert.equal(values.get('relay_releases_total{pool="a",reason="operator"}'), 1);
    assert.deepEqual(gauge(values, "a"), { leased: 0, free: 2, expired: 0 });
    assert.equal(leasedInDb(db, "a"), 0);
    // Counted once: the next scrape reads only newer records.
    const again = await scrape(server);
    assert.equal(again.values.get('relay_releases_total{pool="a",reason="operator"}'), 1);
  });

  await t.step("a license whose file expired counts as expired", async () => {
    clock.seconds = t0 + 3601;
    const { values } = await scrape(server);
    assert.deepEqual(gauge(values, "b"), { leased: 0, free: 0, expired: 1 });
    assert.deepEqual(gauge(values, "a"), { leased: 0, free: 2, expired: 0 });
  });

  assert.equal((await server.stop()).code, 0);
});

Deno.test("relay_reap_duration_seconds counts the reaper's runs", async () => {
  await using dir = await tempDir();
  await addMinted(dir.path, 1);
  await using server = await serveInProcess(["--cull-interval", "100ms"], {
    database: dbPath(dir.path),
  });
  // Waits for the reaper's timer to fire, not for time to pass on any clock.
  const deadline = Date.now() + 20_000;
  let runs = 0;
  while (runs === 0 && Date.now() < deadline) {
    runs = (await scrape(server)).values.get("relay_reap_duration_seconds_count") ?? 0;
    if (runs === 0) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(runs >= 1, "the reaper ran and was timed");
});

Deno.test("relay serve --no-metrics: /metrics answers as an unknown path", async (t) => {
  await using dir = await tempDir();
  const unknown = async (url: string) => {
    const reply = await call(url, "GET", "/no-such-path");
    return { status: reply.status, body: reply.body };
  };
  for (
    const [name, args, env] of [
      ["--no-metrics", ["--no-metrics"], {}],
      ["RELAY_NO_METRICS=1", [], { RELAY_NO_METRICS: "1" }],
    ] as const
  ) {
    await t.step(name, async () => {
      // The real binary, so that the flag and env var are wired end to end.
      await using server = await startServer([...args], { cwd: dir.path, env });
      const reply = await call(server.url, "GET", "/metrics");
      assert.deepEqual({ status: reply.status, body: reply.body }, await unknown(server.url));
      assert.equal(reply.status, 404);
      assert.equal((await server.stop()).status.code, 0);
    });
  }
  await t.step("on by default", async () => {
    await using server = await startServer([], { cwd: dir.path });
    const reply = await call(server.url, "GET", "/metrics");
    assert.equal(reply.status, 200);
    assert.match(reply.body, /^relay_build_info\{version="[^"]+"\} 1$/m);
    const post = await call(server.url, "POST", "/metrics");
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("Allow"), "GET, HEAD");
    assert.equal((await server.stop()).status.code, 0);
  });
});

Deno.test("with --no-audit, leases reaped in bulk are counted under their pool", async () => {
  await using dir = await tempDir();
  await addMinted(dir.path, 1, { pool: "a" });
  await addMinted(dir.path, 1);
  const clock = new FakeClock();
  await using server = await serveInProcess(["--ttl", `${TTL}s`, "--cull-interval", "1h"], {
    database: dbPath(dir.path),
    clock,
    global: ["--no-audit"],
  });
  assert.equal((await claim(server, "node-a", "a")).status, 201);
  assert.equal((await claim(server, "node-b")).status, 201);
  assert.equal((await claim(server, "node-c")).status, 410);
  clock.seconds += TTL + 1;
  // No free license without a pool: the claim reaps both expired leases first.
  assert.equal((await claim(server, "node-c")).status, 201);
  const { values } = await scrape(server);
  assert.equal(values.get('relay_releases_total{pool="a",reason="expired"}'), 1);
  assert.equal(values.get('relay_releases_total{pool="",reason="expired"}'), 1);
  assert.equal(values.get('relay_releases_total{pool="(unknown)",reason="expired"}'), undefined);
});
