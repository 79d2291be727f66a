/**
 * `relay release` on the database of a real server: the lease ends at once,
 * the node's next heartbeat is a new claim (`201`, or `410` when nothing is
 * free, never a `202`), the audit log records it, the README's audit
 * queries still read it, and every mistake is a clear error. The scenarios
 * run on SQLite and on PostgreSQL, and the engines' replies, output and rows
 * are compared (see ../server/scenario_support.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startServer, tempDir } from "../helpers.ts";
import { assertJson, createdBody, errorBody } from "../server/http_support.ts";
import type { Backend } from "../reliability/backends.ts";
import { scenario, type ScenarioDatabase } from "../server/scenario_support.ts";
import { dbPath, exists, runRelay } from "./support.ts";

const README = fileURLToPath(new URL("../../README.md", import.meta.url));

/** The SQL statements of the first ```sql block after `heading` in the README. */
async function readmeQueries(heading: string): Promise<string[]> {
  const readme = await Deno.readTextFile(README);
  const section = readme.slice(readme.indexOf(`\n${heading}\n`));
  const block = /```sql\n([\s\S]*?)```/.exec(section)![1];
  return block.split(";").map((sql) => sql.replace(/^\s*--.*$/gm, "").trim()).filter(Boolean);
}

/**
 * The README's audit queries for `backend`: the "Audit log" section's three
 * (the third, with SQLite's `datetime()`, is for SQLite); on PostgreSQL its
 * first two and the history query of "Audit log in psql".
 */
async function documentedAuditQueries(backend: Backend): Promise<string[]> {
  const queries = await readmeQueries("## Audit log");
  if (backend === "sqlite") return queries;
  return [...queries.slice(0, 2), ...await readmeQueries("### Audit log in psql")];
}

async function nodeRow(db: ScenarioDatabase, fingerprint: string) {
  const { id, deactivated_at } = await db.node(fingerprint);
  return { id, deactivated_at };
}

async function licenseRow(db: ScenarioDatabase, guid: string) {
  return (await db.rows<{ node_id: number | null; last_released_at: number | null }>(
    "SELECT node_id, last_released_at FROM licenses WHERE guid = ?",
    guid,
  ))[0];
}

scenario(
  "relay release ends a lease of a running server; the node's next heartbeat is a new claim",
  async (t, s) => {
    const db = s.db;
    const [license] = await db.add(1, { pool: "prod" });
    const clock = s.clock;
    const server = await s.serve(["--ttl", "60s", "--cull-interval", "1h"]);
    const relay = (args: string[], env?: Record<string, string>) =>
      s.relay(args, { now: clock.now(), env });
    const poolId = await db.poolId("prod");
    const licenseId = (await db.license(license.key)).id;

    assert.equal((await s.claim(server, "node-a", "prod")).status, 201);
    clock.advance(10);

    await t.step("--node ends the lease and deactivates the node, audited", async () => {
      const before = (await db.auditTrail()).length;
      const result = await relay(["release", "--node", "node-a"]);
      assert.equal(result.stderr, "");
      assert.equal(result.code, 0);
      assert.equal(
        result.stdout,
        `lease released: license ${license.id} in pool prod, node node-a\n`,
      );
      assert.deepEqual(await licenseRow(db, license.id), {
        node_id: null,
        last_released_at: clock.unix(),
      });
      const node = await nodeRow(db, "node-a");
      assert.equal(node.deactivated_at, clock.unix());
      assert.deepEqual((await db.auditTrail()).slice(before), [
        ["license.operator_released", "license", licenseId, poolId],
        ["node.deactivated", "node", node.id, poolId],
      ]);
    });

    await t.step("the node's next heartbeat gets a new lease: 201, not 202", async () => {
      clock.advance(5);
      const reply = await s.claim(server, "node-a", "prod");
      assertJson(reply, 201, createdBody(license.certificate, license.key, clock.unix(), 60));
      assert.equal((await nodeRow(db, "node-a")).deactivated_at, null);
    });

    await t.step(
      "--license ends it too; the license goes to another node, node-a gets 410",
      async () => {
        const released = await relay(["release", "--license", license.id, "--pool", "prod"]);
        assert.equal(released.code, 0, released.stderr);
        assert.equal(
          released.stdout,
          `lease released: license ${license.id} in pool prod, node node-a\n`,
        );
        assert.equal((await s.claim(server, "node-b", "prod")).status, 201);
        assertJson(
          await s.claim(server, "node-a", "prod"),
          410,
          errorBody("no licenses available"),
        );
        const leases = await relay(["leases", "--json"]);
        assert.deepEqual(
          JSON.parse(leases.stdout).leases.map((lease: { node: string }) => lease.node),
          ["node-b"],
        );
      },
    );

    await t.step("the README's audit queries still run and name the new event", async () => {
      const queries = await documentedAuditQueries(s.backend);
      assert.equal(queries.length, 3, queries.join("\n---\n"));
      for (const sql of queries) assert.ok((await db.rows(sql)).length > 0, sql);
      const history = await db.rows<
        { event_type: string; entity_type: string; pool_name: string | null }
      >(queries[2]);
      assert.equal(
        history.filter((row) => row.event_type === "license.operator_released").length,
        2,
      );
      assert.ok(
        history.every((row) =>
          row.event_type !== "license.operator_released" ||
          (row.entity_type === "license" && row.pool_name === "prod")
        ),
      );
    });

    assert.equal((await server.stop()).code, 0);
  },
);

// A spawned server answers on the real clock: each engine is checked on its own.
scenario(
  "relay release while a spawned relay serve takes heartbeats on the same database",
  async (_t, s) => {
    await s.db.add(6);
    await using server = await startServer(["--database", s.db.database], { cwd: s.db.dir });
    const put = async (node: string) => {
      const response = await fetch(`${server.url}/v1/nodes/${node}`, { method: "PUT" });
      await response.body?.cancel();
      return response.status;
    };
    const nodes = ["n0", "n1", "n2", "n3", "n4", "n5"];
    assert.deepEqual(await Promise.all(nodes.map(put)), nodes.map(() => 201));
    // Heartbeats of the other nodes keep the server writing while release runs.
    const [statuses, released] = await Promise.all([
      Promise.all(Array.from({ length: 40 }, (_, i) => put(nodes[1 + (i % 5)]))),
      s.db.relay(["release", "--node", "n0"]),
    ]);
    assert.equal(released.code, 0, released.stderr);
    assert.deepEqual(new Set(statuses), new Set([202]));
    assert.equal(await put("n0"), 201);
    const [leased] = await s.db.rows<{ n: number }>(
      "SELECT count(*) AS n FROM licenses WHERE node_id IS NOT NULL",
    );
    assert.equal(Number(leased.n), 6);
    assert.equal((await server.stop()).status.code, 0);
  },
  { compare: false },
);

// SQLite only: a SQLite file that does not exist (PostgreSQL's missing
// database is in postgres_commands_test.ts).
Deno.test("relay release on a missing database file is an error naming it, and creates nothing", async () => {
  await using dir = await tempDir();
  const result = await runRelay(["release", "--node", "x"], { cwd: dir.path });
  assert.equal(result.stderr, `error: Cannot open database "./relay.sqlite": no such file\n`);
  assert.equal(result.code, 1);
  assert.equal(await exists(dbPath(dir.path)), false);
});

scenario("relay release refuses what it cannot release, naming it", async (t, s) => {
  const db = s.db;
  const [free, held, other] = await db.add(3, { pool: "prod" });
  await db.add(1, { pool: "dev" });
  const clock = s.clock;
  {
    const server = await s.serve(["--ttl", "30s", "--cull-interval", "1h"]);
    // fifo: node-a gets `free`, node-b `held`, node-c `other`; node-a then lets go.
    for (const node of ["node-a", "node-b", "node-c"]) {
      assert.equal((await s.claim(server, node, "prod")).status, 201);
    }
    assert.equal((await s.release(server, "node-a", "prod")).status, 204);
    clock.advance(10);
    assert.equal((await s.claim(server, "node-c", "prod")).status, 202);
    await server.stop();
  }
  const relay = (args: string[]) => s.relay(args, { now: clock.now() });

  for (
    const [name, args, code, stderr] of [
      ["an unknown node", ["--node", "nope"], 1, 'Node "nope" not found'],
      ["an unknown license", ["--license", "nope"], 1, 'License "nope" not found'],
      ["a free license", ["--license", free.id], 1, `License "${free.id}" is not leased`],
      ["a node that released its lease", ["--node", "node-a"], 1, 'Node "node-a" holds no lease'],
      ["an unknown pool", ["--node", "node-b", "--pool", "nope"], 1, 'Pool "nope" not found'],
      [
        "a lease in another pool",
        ["--node", "node-b", "--pool", "dev"],
        1,
        'Node "node-b" holds no lease in pool "dev": its lease is in pool "prod"',
      ],
      [
        "--node with --license",
        ["--node", "node-b", "--license", held.id],
        2,
        "Give one of --node, --user or --license",
      ],
      [
        "neither",
        [],
        2,
        "Give the lease to end: --node <fingerprint>, --user <email> or --license <id>",
      ],
    ] as [string, string[], number, string][]
  ) {
    await t.step(name, async () => {
      const before = (await db.auditTrail()).length;
      const result = await relay(["release", ...args]);
      assert.equal(result.stderr, `error: ${stderr}\n`);
      assert.equal(result.code, code);
      assert.equal(result.stdout, "");
      assert.equal((await db.auditTrail()).length, before, "nothing recorded");
      assert.notEqual((await licenseRow(db, held.id)).node_id, null, "nothing released");
    });
  }

  await t.step("a lease past its expiry is ended as the reaper would, exit 0", async () => {
    // node-b's lease expired at T+30; node-c's heartbeat at T+10 keeps its own until T+40.
    clock.advance(25);
    const before = (await db.auditTrail()).length;
    const result = await relay(["release", "--license", held.id]);
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    const expiredAt = new Date((clock.unix() - 5) * 1000).toISOString().replace(".000Z", "Z");
    assert.equal(
      result.stdout,
      `lease had expired at ${expiredAt} and was not reaped yet; ended it as the reaper would: ` +
        `license ${held.id} in pool prod, node node-b\n`,
    );
    const poolId = await db.poolId("prod");
    assert.deepEqual((await db.auditTrail()).slice(before), [
      ["license.lease_expired", "license", (await db.license(held.key)).id, poolId],
      ["node.culled", "node", (await nodeRow(db, "node-b")).id, poolId],
    ]);
  });

  await t.step("--no-audit releases without an audit row", async () => {
    const before = (await db.auditTrail()).length;
    const result = await relay(["--no-audit", "release", "--node", "node-c"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await licenseRow(db, other.id)).node_id, null);
    assert.equal((await db.auditTrail()).length, before);
  });
});
