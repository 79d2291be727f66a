/**
 * Reliability: no over-leasing under contention, on every engine.
 *
 * Real `relay serve` processes on 127.0.0.1 (port 0), real HTTP clients, and
 * the database read back to check that every acknowledged lease exists and
 * that no license is ever leased twice: a burst of 500 clients against 100
 * licenses for each strategy, and ~5 s of churn with the clients' own
 * history of holds. On PostgreSQL three replicas share the database, client
 * `i` talking to replica `i % 3`. (Several servers with `relay add` and
 * `relay del` on one database: `replicas_contention_test.ts`.)
 *
 * @module
 */

import assert from "node:assert/strict";
import { prng } from "../helpers.ts";
import { backendDatabase, BACKENDS, replicasOf } from "./backends.ts";
import {
  assertBurstConsistent,
  burst,
  CLIENTS,
  leaseRows,
  LICENSES,
  send,
  stopAllCleanly,
  tally,
} from "./contention_support.ts";

for (const backend of BACKENDS) {
  const replicas = replicasOf(backend);
  const on = `${backend}, ${replicas} replica${replicas === 1 ? "" : "s"}`;

  Deno.test(`500 concurrent claims against 100 licenses lease exactly 100, for every strategy (${on})`, async (t) => {
    for (const strategy of ["fifo", "lifo", "rand"]) {
      await t.step(strategy, async () => {
        await using db = await backendDatabase(backend);
        await db.add(LICENSES);
        const servers = await db.replicas(replicas, ["--strategy", strategy]);
        const started = performance.now();
        const { results, peakInFlight } = await burst(
          servers.map((s) => s.url),
          strategy,
          CLIENTS,
        );
        const elapsed = Math.round(performance.now() - started);
        assert.equal(peakInFlight, CLIENTS, "all clients in flight at once");
        assert.deepEqual(tally(results.map((r) => r.status)), { 201: 100, 410: 400 });
        await assertBurstConsistent(db, results, LICENSES);
        await stopAllCleanly(servers, `${strategy} server`);
        console.log(`${backend} ${strategy}: ${CLIENTS} claims in ${elapsed} ms`);
      });
    }
  });

  Deno.test(`~5 s of churn by 150 clients never leases more than 100 licenses (${on})`, async () => {
    await using db = await backendDatabase(backend);
    await db.add(LICENSES);
    const servers = await db.replicas(replicas, ["--strategy", "rand"]);

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

    const client = async (fingerprint: string, url: string) => {
      for (let n = 0; n < maxRequestsPerClient && running(); n++) {
        const holds = holders.has(fingerprint);
        // Holders heartbeat (70%) or release; others claim (80%) or release anyway.
        const method = (holds ? random() < 0.7 : random() < 0.8) ? "PUT" : "DELETE";
        // A holder that sends DELETE has given its lease up: the server may hand
        // the license to another client whose 201 arrives before this 204
        // (both in one group commit), so it stops counting as a holder now.
        const releasing = holds && method === "DELETE";
        if (releasing) holders.delete(fingerprint);
        const { status, body } = await send(url, method, fingerprint);
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

    // Samples the database every ~100 ms; each sample is one statement, so
    // one snapshot. SQLite's free_counts is checked too; PostgreSQL has none.
    const countedFree = backend === "sqlite"
      ? "(SELECT IFNULL(sum(free), 0) FROM free_counts WHERE level = 1)"
      : "(SELECT count(*) FROM licenses WHERE node_id IS NULL)";
    const samples: Record<string, number>[] = [];
    const sampler = (async () => {
      while (running()) {
        const [row] = await db.rows<Record<string, number>>(
          `SELECT
             (SELECT count(*) FROM licenses WHERE node_id IS NOT NULL) AS leased,
             (SELECT count(DISTINCT node_id) FROM licenses WHERE node_id IS NOT NULL) AS holding_nodes,
             (SELECT count(*) FROM licenses WHERE node_id IS NULL) AS free,
             ${countedFree} AS counted_free,
             (SELECT count(*) FROM nodes WHERE deactivated_at IS NULL) AS active_nodes,
             (SELECT count(*) FROM licenses l JOIN nodes n ON n.id = l.node_id
               WHERE n.deactivated_at IS NOT NULL) AS held_by_inactive`,
        );
        const sample = Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Number(v)]));
        samples.push(sample);
        const fine = sample.leased <= LICENSES && sample.holding_nodes === sample.leased &&
          sample.leased + sample.free === LICENSES && sample.counted_free === sample.free &&
          sample.active_nodes === sample.leased && sample.held_by_inactive === 0;
        if (!fine) errors.push(`inconsistent sample ${JSON.stringify(sample)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();

    await Promise.all([
      ...Array.from(
        { length: clients },
        (_, i) => client(`churn-${i}`, servers[i % servers.length].url),
      ),
      sampler,
    ]);
    assert.deepEqual(errors, []);
    console.log(
      `${backend} churn: ${samples.length} samples, peak ${peakHolders} holders, ${
        JSON.stringify(counts)
      }`,
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
    const rows = await leaseRows(db);
    assert.deepEqual(
      new Map(rows.map((r) => [r.fingerprint, r.key])),
      holders,
      "holders according to the clients = holders according to the database",
    );
    for (const row of rows) assert.equal(row.deactivated_at, null, `${row.fingerprint} active`);
    assert.equal(
      new Set(rows.map((r) => r.node_id)).size,
      rows.length,
      "no node holds two licenses",
    );
    assert.deepEqual(await db.freeCountMismatches(), [], "free_counts = free licenses");
    await stopAllCleanly(servers, "churn server");
  });
}
