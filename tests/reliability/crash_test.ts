/**
 * Reliability: nothing acknowledged is lost when `relay serve` is killed, on
 * every engine.
 *
 * SQLite: twenty rounds on one database file: start a real server, run
 * concurrent claims, heartbeats and releases, SIGKILL it after a random
 * number of answers, then read the file (read-only, server dead) and check
 * its integrity and that it holds every lease a client was told about and
 * none that a client released.
 *
 * PostgreSQL: three replicas on one database; each round SIGKILLs one of
 * them under the same load, the other two go on answering (never a 5xx,
 * never a dropped connection) for as many answers again, then the database
 * is checked the same way and the killed replica is started again.
 *
 * Each round's servers must agree with what clients were told before the
 * crash (a holder's claim is a 202, never a new 201; a holder's release is a
 * 204, never a 404).
 *
 * @module
 */

import assert from "node:assert/strict";
import { prng, type ServerProcess } from "../helpers.ts";
import { type Backend, backendDatabase, BACKENDS } from "./backends.ts";
import { type Belief, checkDatabase, send } from "./crash_support.ts";

/** Rounds of load and SIGKILL; `RELAY_SOAK_ROUNDS` raises it for a soak run. */
const SOAK_ROUNDS = Number(Deno.env.get("RELAY_SOAK_ROUNDS") ?? 0);
/** Rounds per engine: each PostgreSQL round restarts one replica of three. */
const ROUNDS: Record<Backend, number> = { sqlite: SOAK_ROUNDS || 20, postgres: SOAK_ROUNDS || 6 };
const LICENSES = 200;
const FINGERPRINTS = 300;
/** Concurrent clients per round. */
const WORKERS = 40;
/** Requests per client per round, at most (a round lasts ≤ 300 ms anyway). */
const MAX_REQUESTS_PER_WORKER = 2_000;
const SEED = Number(Deno.env.get("RELAY_SOAK_SEED") ?? 0xc0ffee);
/**
 * Long enough that no lease expires during the test (which takes well under a
 * minute), so "still holds" never has to allow for expiry.
 */
const TTL = "5m";
/** PostgreSQL: replicas on the database. */
const REPLICAS = 3;

for (const backend of BACKENDS) {
  const rounds = ROUNDS[backend];
  const name = backend === "sqlite"
    ? `relay serve killed with SIGKILL ${rounds} times loses nothing it acknowledged (sqlite)`
    : `one of ${REPLICAS} replicas killed with SIGKILL ${rounds} times: the others carry on, nothing acknowledged is lost (postgres)`;

  Deno.test(name, async () => {
    const started = performance.now();
    await using db = await backendDatabase(backend);
    await db.add(LICENSES);
    const random = prng(SEED);
    const fingerprints = Array.from({ length: FINGERPRINTS }, (_, i) => `crash-${i}`);
    // A new database: nobody holds anything.
    const beliefs = new Map<string, Belief>(fingerprints.map((fp) => [fp, { holds: false }]));
    const acknowledged: Record<string, number> = {};
    let unknownRequests = 0;
    let afterKill = 0;
    let checkedFingerprints = 0;
    let excludedFingerprints = 0;
    // PostgreSQL: the replicas that run between rounds.
    const replicas: ServerProcess[] = backend === "postgres"
      ? await db.replicas(REPLICAS, ["--ttl", TTL])
      : [];

    for (let round = 1; round <= rounds; round++) {
      const strategy = ["fifo", "lifo", "rand"][round % 3];
      const victimIndex = round % REPLICAS;
      const victim = backend === "sqlite"
        ? await db.serve(["--ttl", TTL, "--strategy", strategy])
        : replicas[victimIndex];
      const alive = backend === "sqlite" ? [victim] : [...replicas];
      // Killed after a random number of acknowledged answers, not a random
      // time: on a busy machine a time window may hold few requests, and every
      // round must kill the server in the middle of real traffic.
      const killAfter = 30 + Math.floor(random() * 51);
      // PostgreSQL: the survivors answer as many again after the kill.
      const stopAfter = backend === "sqlite" ? killAfter : 2 * killAfter;
      let roundAcks = 0;
      const { promise: enoughAcks, resolve: onEnoughAcks } = Promise.withResolvers<void>();
      const errors: string[] = [];
      const busy = new Set<string>();
      let killed = false;
      let stopping = false;

      // Each fingerprint has at most one request in flight, so "its last
      // acknowledged response" is well defined.
      const worker = async () => {
        for (let n = 0; n < MAX_REQUESTS_PER_WORKER && !stopping; n++) {
          let index = Math.floor(random() * FINGERPRINTS);
          while (busy.has(fingerprints[index])) index = (index + 1) % FINGERPRINTS;
          const fingerprint = fingerprints[index];
          const before = beliefs.get(fingerprint)!;
          const put = before.holds === true
            ? random() < 0.7 // heartbeat, or release
            : before.holds === false
            ? random() < 0.85 // claim, or a release that should find nothing
            : random() < 0.5;
          const method = put ? "PUT" : "DELETE";
          const server = alive[Math.floor(random() * alive.length)];
          busy.add(fingerprint);
          const answer = await send(server.url, method, fingerprint);
          busy.delete(fingerprint);
          if (answer === undefined) {
            if (server !== victim || !killed) {
              errors.push(`${fingerprint}: ${method} to a running server failed`);
              stopping = true;
              continue;
            }
            // Unknown outcome. A holder's claim only extends, and a release by a
            // non-holder changes nothing; anything else may have changed it, and
            // a release never creates a lease, so its key (if it holds) stays.
            unknownRequests++;
            if ((put && before.holds === true) || (!put && before.holds === false)) continue;
            beliefs.set(fingerprint, { holds: "unknown", key: put ? undefined : before.key });
            continue;
          }
          const { status, body } = answer;
          const label = `${method} ${status}`;
          acknowledged[label] = (acknowledged[label] ?? 0) + 1;
          if (killed) afterKill++;
          if (++roundAcks >= killAfter) onEnoughAcks();
          if (roundAcks >= stopAfter) stopping = true;
          const expected = before.holds === true
            ? (put ? [202] : [204])
            : before.holds === false
            ? (put ? [201, 410] : [404])
            : (put ? [201, 202, 410] : [204, 404]);
          if (!expected.includes(status)) {
            errors.push(
              `${fingerprint} (holds ${before.holds}): ${label} ${
                JSON.stringify(body)
              }, expected ${expected}`,
            );
            stopping = true;
            continue;
          }
          if (status === 201) {
            const key = body?.license_key;
            beliefs.set(fingerprint, {
              holds: true,
              key: typeof key === "string" ? key : undefined,
            });
          } else if (status === 202) {
            beliefs.set(fingerprint, { holds: true, key: before.key });
          } else {
            beliefs.set(fingerprint, { holds: false });
          }
        }
      };

      const killer = (async () => {
        await enoughAcks;
        if (backend === "sqlite") stopping = true;
        else alive.splice(alive.indexOf(victim), 1);
        killed = true;
        return await victim.stop("SIGKILL");
      })();
      await Promise.all(Array.from({ length: WORKERS }, worker));
      // Workers that stopped on their own (a wrong answer) must not leave the killer waiting.
      onEnoughAcks();
      const { status, stdout } = await killer;
      assert.deepEqual(errors, [], `round ${round}: answers agree with what clients were told`);
      assert.equal(status.signal, "SIGKILL", `round ${round}: the server was killed`);
      assert.doesNotMatch(stdout, /"level":"error"|locked/i, `round ${round}: server log`);
      for (const survivor of alive) {
        assert.doesNotMatch(
          survivor.lines.join("\n"),
          /"level":"error"/,
          `round ${round}: a survivor logged an error`,
        );
      }

      const { checked, excluded } = await checkDatabase(db, beliefs, {
        round,
        licenses: LICENSES,
      });
      checkedFingerprints += checked;
      excludedFingerprints += excluded;
      if (backend === "postgres") {
        replicas[victimIndex] = await db.serve(["--ttl", TTL, "--strategy", strategy]);
      }
    }

    const acked = (acknowledged["PUT 201"] ?? 0) + (acknowledged["PUT 202"] ?? 0) +
      (acknowledged["DELETE 204"] ?? 0);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `${backend}: ${rounds} rounds in ${seconds} s: ${acked} acknowledged 201/202/204 checked ` +
        `(${JSON.stringify(acknowledged)}), ${afterKill} answered by survivors after a kill, ` +
        `${unknownRequests} requests with unknown outcome, ${checkedFingerprints} fingerprint ` +
        `states checked, ${excludedFingerprints} excluded as possibly changed`,
    );
    assert.ok(acked > 25 * rounds, `${acked} acknowledged 201/202/204 responses`);
    for (const label of ["PUT 201", "PUT 202", "DELETE 204"]) {
      assert.ok((acknowledged[label] ?? 0) > 0, `some ${label}`);
    }
    assert.ok(unknownRequests > 0, "some requests were cut off by a kill");
    if (backend === "postgres") {
      assert.ok(afterKill >= 30 * rounds, `${afterKill} answers by survivors after the kills`);
    }
  });
}
