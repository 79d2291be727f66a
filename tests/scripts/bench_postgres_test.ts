import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { runLoad } from "../../scripts/bench/load.ts";
import type { Context } from "../../scripts/bench/measure.ts";
import { parseBenchArgs, QUICK } from "../../scripts/bench/options.ts";
import { killAll } from "../../scripts/bench/procs.ts";
import { startCeiling } from "../../scripts/bench/servers.ts";
import { runPostgresSection } from "../../scripts/bench/sections/postgres.ts";
import { Templates } from "../../scripts/bench/templates.ts";
import { luaScript } from "../../scripts/bench/wrk_script.ts";

/** The paths a ceiling recorded, in order. */
function hitsOf(database: string): string[] {
  const db = new DatabaseSync(database, { readOnly: true });
  try {
    return db.prepare("SELECT path FROM hits ORDER BY path").all().map((row) => String(row.path));
  } finally {
    db.close();
  }
}

Deno.test("runLoad() spreads the connections over several ports: connection c to port c mod ports", async () => {
  const dir = await Deno.makeTempDir({ prefix: "relay_bench_test_" });
  try {
    await using a = await startCeiling(`${dir}/a.sqlite`, "NORMAL", "group");
    await using b = await startCeiling(`${dir}/b.sqlite`, "NORMAL", "group");
    const result = await runLoad("deno", [a.port, b.port], {
      mode: "claim",
      connections: 3,
      seconds: 20,
      prefix: "t-",
      quota: [2, 1, 1],
    }, { workDir: dir, clientProcesses: 2 });
    assert.equal(result.requests, 4);
    assert.deepEqual(result.statuses, { "200": 4 });
    await a.stop();
    await b.stop();
    assert.deepEqual(hitsOf(`${dir}/a.sqlite`), [
      "/v1/nodes/t-0-0",
      "/v1/nodes/t-0-1",
      "/v1/nodes/t-2-0",
    ]);
    assert.deepEqual(hitsOf(`${dir}/b.sqlite`), ["/v1/nodes/t-1-0"]);
  } finally {
    await killAll();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("luaScript() points wrk thread c at port c mod ports, and leaves one port to wrk's URL", () => {
  const plan = { mode: "heartbeat", connections: 4, seconds: 1 } as const;
  const spread = luaScript(plan, [8001, 8002, 8003]);
  assert.ok(spread.includes("local PORTS = {8001,8002,8003}"));
  assert.ok(
    spread.includes(
      'thread.addr = wrk.lookup("127.0.0.1", tostring(PORTS[(next_id % #PORTS) + 1]))[1]',
    ),
  );
  assert.ok(luaScript(plan).includes("local PORTS = {}"));
});

Deno.test("the postgres section measures SQLite and PostgreSQL replicas on a private server with fsync on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "relay_bench_test_" });
  try {
    const parsed = parseBenchArgs(["--quick", "--only", "postgres", "--load", "deno"]);
    assert.equal(parsed.kind, "run");
    const options = (parsed as Extract<typeof parsed, { kind: "run" }>).options;
    const context: Context = {
      options,
      profile: {
        ...QUICK,
        seconds: { ...QUICK.seconds, warm: 0.3, heartbeat: 0.5 },
        maxClaimRounds: 1,
        postgres: { n: 60, replicas: [2] },
      },
      generator: "deno",
      dir,
      connections: 4,
    };
    const { postgres } = await runPostgresSection(context, new Templates(dir));
    assert.ok(postgres);
    assert.equal(postgres.n, 60);
    assert.equal(postgres.server.private, true);
    assert.match(postgres.server.version, /^\d+\.\d+/);
    assert.equal(postgres.server.settings.fsync, "on");
    assert.equal(postgres.server.settings.synchronous_commit, "on");
    assert.deepEqual(
      postgres.rows.map((row) => [row.engine, row.replicas]),
      [["sqlite", 1], ["postgres", 2]],
    );
    for (const row of postgres.rows) {
      // One round claims all 60 licenses and releases them; heartbeats find every node leased.
      assert.deepEqual(row.claim.load.statuses, { "201": 60 }, row.engine);
      assert.deepEqual(row.release.load.statuses, { "204": 60 }, row.engine);
      assert.ok(row.heartbeat.load.requests > 0, row.engine);
      assert.deepEqual(Object.keys(row.heartbeat.load.statuses), ["202"], row.engine);
      assert.equal(row.serverErrors, 0, row.engine);
    }
  } finally {
    await killAll();
    await Deno.remove(dir, { recursive: true });
  }
});
