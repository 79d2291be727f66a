/**
 * Reliability, PostgreSQL only: the database server goes away and comes
 * back under a running `relay serve`. A private PostgreSQL server
 * (`startPostgresServer`, so the test may stop it) and a real relay process:
 * while PostgreSQL is down every lease route answers 503 with a JSON reason,
 * quickly, never a 500, and `/v1/health` answers 503; once it is back the
 * same relay process (never restarted) leases again and is healthy. Then a
 * PostgreSQL crash (`stop("immediate")`) in the middle of load: no 500
 * ever, and nothing acknowledged is lost.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connectPostgres } from "../../lib/storage/postgres/connect.ts";
import {
  mintFiles,
  prng,
  runInProcess,
  type ServerProcess,
  startServer,
  tempDir,
} from "../helpers.ts";
import { type PostgresServer, startPostgresServer } from "../postgres_server.ts";
import type { Param } from "./backends.ts";
import { type Belief, checkDatabase, type DatabaseReader, send } from "./crash_support.ts";

/** The relay's connect timeout (lib/storage/postgres/connect.ts), in ms: a 503 comes sooner. */
const CONNECT_TIMEOUT_MS = 5_000;
/** `{"error":"database unavailable: <reason>"}` and a newline, as the server writes it. */
const UNAVAILABLE = /^\{"error":"database unavailable: [^"]+"\}\n$/;

/** A database `relay` on the private server, licenses added, and a reader of its rows. */
async function relayDatabase(
  pg: PostgresServer,
  dir: string,
  licenses: number,
): Promise<{ url: string; reader: DatabaseReader; close: () => Promise<void> }> {
  const admin = connectPostgres(pg.adminUrl, { max: 1 });
  try {
    await admin.unsafe("CREATE DATABASE relay");
  } finally {
    await admin.end();
  }
  const url = new URL(pg.adminUrl);
  url.pathname = "/relay";
  const { publicKey, files } = await mintFiles(dir, licenses);
  const args = ["add", "--database", url.href, "--public-key", publicKey];
  for (const file of files) args.push("--file", file.path, "--key", file.key);
  const added = await runInProcess(args, { now: new Date() });
  assert.equal(added.code, 0, `relay add: ${added.stderr}`);
  const sql = connectPostgres(url.href, { max: 1 });
  const rows: DatabaseReader["rows"] = async <T>(text: string, ...params: Param[]) => {
    let n = 0;
    const numbered = text.replace(/\?/g, () => `$${++n}`);
    return [...await sql.unsafe(numbered, params)].map((row) => ({ ...row })) as T[];
  };
  const reader: DatabaseReader = {
    backend: "postgres",
    rows,
    count: async (text, ...params) => Number((await rows<{ n: number }>(text, ...params))[0].n),
    freeCountMismatches: () => Promise.resolve([]),
  };
  return { url: url.href, reader, close: async () => await sql.end() };
}

/** One request: status, Content-Type, body and how long it took. */
async function call(
  server: ServerProcess,
  method: string,
  path: string,
): Promise<{ status: number; type: string | null; body: string; ms: number }> {
  const started = performance.now();
  const response = await fetch(`${server.url}${path}`, {
    method,
    signal: AbortSignal.timeout(30_000),
  });
  const body = await response.text();
  const ms = performance.now() - started;
  return { status: response.status, type: response.headers.get("Content-Type"), body, ms };
}

/** Polls `check` (a request) until it holds; fails after `timeoutMs` naming `what`. */
async function eventually(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

Deno.test("while PostgreSQL is down, lease routes answer 503 with a JSON reason and /v1/health 503; the same relay recovers", async (t) => {
  await using dir = await tempDir();
  await using pg = await startPostgresServer();
  const { url, reader, close } = await relayDatabase(pg, dir.path, 2);
  try {
    await using server = await startServer(["--database", url], { cwd: dir.path });

    await t.step("up: 201 and health 200", async () => {
      assert.equal((await call(server, "PUT", "/v1/nodes/held")).status, 201);
      assert.equal((await call(server, "GET", "/v1/health")).status, 200);
    });

    await pg.stop("fast");

    await t.step(
      "down: PUT, GET and DELETE answer 503 with the reason, within the connect timeout",
      async () => {
        for (const method of ["PUT", "GET", "DELETE", "PUT"]) {
          for (const node of ["held", "x"]) {
            const reply = await call(server, method, `/v1/nodes/${node}`);
            const label = `${method} /v1/nodes/${node}`;
            assert.equal(reply.status, 503, `${label}: ${reply.body}`);
            assert.equal(reply.type, "application/json", label);
            assert.match(reply.body, UNAVAILABLE, label);
            assert.ok(reply.ms < CONNECT_TIMEOUT_MS, `${label} took ${Math.round(reply.ms)} ms`);
          }
        }
      },
    );

    await t.step("down: /v1/health answers 503", async () => {
      const reply = await call(server, "GET", "/v1/health");
      assert.equal(reply.status, 503, reply.body);
      assert.equal(reply.type, "application/json");
      assert.match(reply.body, /^\{"error":"database [^"]+"\}\n$/);
      assert.ok(reply.ms < CONNECT_TIMEOUT_MS, `took ${Math.round(reply.ms)} ms`);
    });

    await pg.start();

    await t.step("back: the same process is healthy again and leases", async () => {
      await eventually(
        async () => (await call(server, "GET", "/v1/health")).status === 200,
        "/v1/health 200 after PostgreSQL came back",
      );
      assert.equal(
        server.lines.filter((line) => line.includes('"relay listening"')).length,
        1,
        "one start-up: the process was never restarted",
      );
      // The lease acknowledged before the outage is still there: a heartbeat.
      assert.equal((await call(server, "PUT", "/v1/nodes/held")).status, 202);
      assert.equal((await call(server, "PUT", "/v1/nodes/x")).status, 201);
      assert.equal((await call(server, "DELETE", "/v1/nodes/held")).status, 204);
      const leased = await reader.rows<{ fingerprint: string }>(
        `SELECT n.fingerprint FROM licenses l JOIN nodes n ON n.id = l.node_id`,
      );
      assert.deepEqual(leased.map((r) => r.fingerprint), ["x"]);
    });

    await t.step("the relay never answered 500 and logged no failed request", async () => {
      const { status, stdout } = await server.stop("SIGTERM");
      assert.equal(status.code, 0);
      assert.doesNotMatch(stdout, /"msg":"request failed"/);
    });
  } finally {
    await close();
  }
});

Deno.test("PostgreSQL crashed and restarted under load: never a 500, nothing acknowledged lost", async () => {
  const LICENSES = 40;
  await using dir = await tempDir();
  await using pg = await startPostgresServer();
  const { url, reader, close } = await relayDatabase(pg, dir.path, LICENSES);
  try {
    await using first = await startServer(["--database", url], { cwd: dir.path });
    await using second = await startServer(["--database", url], { cwd: dir.path });
    const servers = [first, second];
    const random = prng(0xfa17);
    const fingerprints = Array.from({ length: 60 }, (_, i) => `fault-${i}`);
    const beliefs = new Map<string, Belief>(fingerprints.map((fp) => [fp, { holds: false }]));
    const statuses: Record<string, number> = {};
    const errors: string[] = [];
    const busy = new Set<string>();
    // Phases: load, crash and restart, then load until enough answers came back.
    let phase: "before" | "outage" | "after" = "before";
    let acksAfter = 0;
    let stopping = false;

    const worker = async () => {
      while (!stopping) {
        let index = Math.floor(random() * fingerprints.length);
        while (busy.has(fingerprints[index])) index = (index + 1) % fingerprints.length;
        const fingerprint = fingerprints[index];
        const before = beliefs.get(fingerprint)!;
        const put = before.holds === true ? random() < 0.7 : random() < 0.85;
        const method = put ? "PUT" : "DELETE";
        busy.add(fingerprint);
        const answer = await send(servers[index % 2].url, method, fingerprint);
        busy.delete(fingerprint);
        const status = answer?.status ?? "no answer";
        statuses[`${phase} ${method} ${status}`] = (statuses[`${phase} ${method} ${status}`] ?? 0) +
          1;
        if (answer === undefined || answer.status >= 500) {
          if (answer?.status !== 503) {
            errors.push(`${fingerprint}: ${method} ${status} ${JSON.stringify(answer?.body)}`);
            stopping = true;
          }
          // A 503 may come after PostgreSQL committed (the reply to COMMIT lost).
          if ((put && before.holds === true) || (!put && before.holds === false)) continue;
          beliefs.set(fingerprint, { holds: "unknown", key: put ? undefined : before.key });
          continue;
        }
        if (phase === "after" && ++acksAfter >= 200) stopping = true;
        const expected = before.holds === true
          ? (put ? [202] : [204])
          : before.holds === false
          ? (put ? [201, 410] : [404])
          : (put ? [201, 202, 410] : [204, 404]);
        if (!expected.includes(answer.status)) {
          errors.push(`${fingerprint} (holds ${before.holds}): ${method} ${answer.status}`);
          stopping = true;
        } else if (answer.status === 201) {
          beliefs.set(fingerprint, { holds: true, key: String(answer.body?.license_key) });
        } else if (answer.status === 202) {
          beliefs.set(fingerprint, { holds: true, key: before.key });
        } else {
          beliefs.set(fingerprint, { holds: false });
        }
      }
    };

    const load = Promise.all(Array.from({ length: 16 }, worker));
    const acked = () =>
      Object.entries(statuses).filter(([k]) => /^before \w+ (201|202|204)$/.test(k))
        .reduce((sum, [, n]) => sum + n, 0);
    await eventually(() => Promise.resolve(acked() >= 100 || stopping), "100 answers");
    phase = "outage";
    await pg.stop("immediate");
    await eventually(
      () => Promise.resolve(Object.keys(statuses).some((k) => k.endsWith(" 503")) || stopping),
      "a 503 during the outage",
    );
    await pg.start();
    phase = "after";
    await load;
    console.log(`PostgreSQL crash under load: ${JSON.stringify(statuses)}`);
    // A relay that died (rather than answering 503) says why on stderr.
    for (const [i, server] of servers.entries()) {
      const exited = await Promise.race([
        server.process.status.then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), 0)),
      ]);
      if (exited) {
        const { status, stderr } = await server.stop();
        assert.fail(`relay ${i + 1} exited (code ${status.code}) during the outage: ${stderr}`);
      }
    }
    assert.deepEqual(errors, [], "only 2xx, 404, 410 and 503 answers");
    await checkDatabase(reader, beliefs, { round: 1, licenses: LICENSES });
    for (const [i, server] of servers.entries()) {
      const { status, stdout } = await server.stop("SIGTERM");
      assert.equal(status.code, 0, `relay ${i + 1} exit code`);
      assert.doesNotMatch(stdout, /"msg":"request failed"/, `relay ${i + 1} logged a 500`);
    }
  } finally {
    await close();
  }
});
