import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { type Args as BreakdownArgs, parseBreakdownArgs } from "../../scripts/bench/breakdown.ts";
import { parseCeilingArgs } from "../../scripts/bench/ceiling.ts";
import { parseClientArgs } from "../../scripts/bench/client.ts";
import { runLoad } from "../../scripts/bench/load.ts";
import { type Args as ProfileArgs, parseProfileArgs } from "../../scripts/bench/profile.ts";
import { PG_SERVER_PERMISSIONS } from "../../scripts/bench/postgres.ts";
import { killAll } from "../../scripts/bench/procs.ts";
import { startCeiling } from "../../scripts/bench/servers.ts";
import type { Parsed, ScriptOutput } from "../../scripts/command_line.ts";

function captured(): ScriptOutput & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, print: (text) => out.push(text), printError: (text) => err.push(text) };
}

/** Asserts that `parse` refuses `args` with exit code 2 and `message` on stderr. */
function assertRefused(
  parse: (args: string[], output: ScriptOutput) => Parsed<unknown>,
  args: string[],
  message: string,
): void {
  const output = captured();
  assert.deepEqual(parse(args, output), { kind: "exit", code: 2 }, args.join(" "));
  assert.ok(output.err.join("\n").includes(message), output.err.join("\n"));
}

Deno.test("parseBreakdownArgs() has the defaults of BENCHMARKS.md's what-if runs", () => {
  const expected: BreakdownArgs = {
    op: "heartbeat",
    licenses: 100_000,
    count: 5_000,
    strategy: "fifo",
    audit: true,
    batch: 1_000,
    pragmas: {},
    sql: [],
    fileBytes: 2_700,
    group: 1,
    wal: false,
    checkpointer: false,
  };
  assert.deepEqual(parseBreakdownArgs([], captured()), { kind: "run", options: expected });
  const args = [
    "--op=reap",
    "--licenses",
    "1000",
    "--count",
    "20",
    "--strategy",
    "rand",
    "--no-audit",
    "--batch",
    "50",
    "--pragma",
    "cache_size=-20000",
    "--sql",
    "ANALYZE",
    "--sql",
    "DROP INDEX idx_nodes_last_heartbeat",
    "--file-bytes",
    "0",
    "--group",
    "64",
    "--wal",
    "--checkpointer",
  ];
  assert.deepEqual(parseBreakdownArgs(args, captured()), {
    kind: "run",
    options: {
      op: "reap",
      licenses: 1000,
      count: 20,
      strategy: "rand",
      audit: false,
      batch: 50,
      pragmas: { wal_autocheckpoint: "0", cache_size: "-20000" },
      sql: ["ANALYZE", "DROP INDEX idx_nodes_last_heartbeat"],
      fileBytes: 0,
      group: 64,
      wal: true,
      checkpointer: true,
    },
  });
});

Deno.test("parseBreakdownArgs() refuses bad values with exit code 2", () => {
  assertRefused(parseBreakdownArgs, ["--op", "vacuum"], `Unknown operation "vacuum"`);
  assertRefused(parseBreakdownArgs, ["--strategy", "best"], `Unknown strategy "best"`);
  assertRefused(parseBreakdownArgs, ["--count", "many"], "Expected a positive integer");
  assertRefused(parseBreakdownArgs, ["--file-bytes", "-1"], "Expected an integer of at least 0");
  assertRefused(parseBreakdownArgs, ["--pragma", "x"], `Invalid pragma "x"`);
});

Deno.test("parseProfileArgs() has its defaults and refuses bad values with exit code 2", () => {
  const expected: ProfileArgs = {
    mode: "heartbeat",
    licenses: 100_000,
    strategy: "fifo",
    audit: true,
    seconds: 6,
    connections: 64,
    pragmas: [],
    top: 20,
    load: "wrk",
  };
  assert.deepEqual(parseProfileArgs([], captured()), { kind: "run", options: expected });
  assert.deepEqual(
    parseProfileArgs(
      ["--mode", "cycle", "--no-audit", "--pragma", "synchronous=NORMAL", "--load=deno"],
      captured(),
    ),
    {
      kind: "run",
      options: {
        ...expected,
        mode: "cycle",
        audit: false,
        pragmas: ["synchronous=NORMAL"],
        load: "deno",
      },
    },
  );
  assertRefused(parseProfileArgs, ["--mode", "warm"], `Unknown mode "warm"`);
  assertRefused(
    parseProfileArgs,
    ["--load", "ab"],
    `Unknown load generator "ab"; one of wrk, deno`,
  );
  assertRefused(parseProfileArgs, ["--seconds", "0"], "Expected a positive integer");
});

Deno.test("parseCeilingArgs() reads its positional arguments with their defaults", () => {
  assert.deepEqual(parseCeilingArgs(["db.sqlite"], captured()), {
    kind: "run",
    options: { database: "db.sqlite", port: 0, synchronous: "FULL", mode: "single" },
  });
  assert.deepEqual(parseCeilingArgs(["db.sqlite", "8080", "NORMAL", "group"], captured()), {
    kind: "run",
    options: { database: "db.sqlite", port: 8080, synchronous: "NORMAL", mode: "group" },
  });
  assertRefused(parseCeilingArgs, [], "error: missing required argument 'database'");
  assertRefused(parseCeilingArgs, ["db", "70000"], `Invalid port "70000"`);
  assertRefused(parseCeilingArgs, ["db", "0", "EXTRA"], `Unknown synchronous setting "EXTRA"`);
  assertRefused(parseCeilingArgs, ["db", "0", "FULL", "batch"], `Unknown mode "batch"`);
});

Deno.test("parseClientArgs() takes a plan or a probe as JSON", () => {
  const plan = {
    port: 1,
    plan: { mode: "warm", connections: 1, seconds: 1, prefix: "w" },
    ids: [0],
  };
  assert.deepEqual(parseClientArgs([JSON.stringify(plan)], captured()), {
    kind: "run",
    options: plan,
  });
  const probe = { port: 1, probe: { nodes: ["n0"], seconds: 1 } };
  assert.deepEqual(parseClientArgs([JSON.stringify(probe)], captured()), {
    kind: "run",
    options: probe,
  });
  assertRefused(parseClientArgs, ["{port"], "Not JSON");
  assertRefused(parseClientArgs, ['{"port":1}'], "Expected {port, plan, ids} or {port, probe}");
});

Deno.test("the Deno load client claims its quotas from the real ceiling, which records each path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "relay_bench_test_" });
  try {
    const database = `${dir}/ceiling.sqlite`;
    await using ceiling = await startCeiling(database, "NORMAL", "group");
    const result = await runLoad("deno", ceiling.port, {
      mode: "claim",
      connections: 2,
      seconds: 20,
      prefix: "t-",
      quota: [3, 2],
    }, { workDir: dir, clientProcesses: 2 });
    assert.equal(result.requests, 5);
    assert.deepEqual(result.statuses, { "200": 5 });
    assert.deepEqual(result.perConnection, [3, 2]);
    await ceiling.stop();
    assert.equal((await ceiling.process.done).code, 0);
    const db = new DatabaseSync(database, { readOnly: true });
    try {
      const paths = db.prepare("SELECT path, method, count FROM hits ORDER BY path").all();
      assert.deepEqual(paths.map((row) => ({ ...row })), [
        { path: "/v1/nodes/t-0-0", method: "PUT", count: 1 },
        { path: "/v1/nodes/t-0-1", method: "PUT", count: 1 },
        { path: "/v1/nodes/t-0-2", method: "PUT", count: 1 },
        { path: "/v1/nodes/t-1-0", method: "PUT", count: 1 },
        { path: "/v1/nodes/t-1-1", method: "PUT", count: 1 },
      ]);
    } finally {
      db.close();
    }
  } finally {
    await killAll();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("each bench tool prints --help with only its documented permissions", async (t) => {
  const scripts: [string, string[]][] = [
    ["scripts/bench/breakdown.ts", ["--allow-read", "--allow-write", "--allow-run"]],
    ["scripts/bench/profile.ts", ["--allow-read", "--allow-write", "--allow-env", "--allow-run"]],
    ["scripts/bench/ceiling.ts", ["--allow-read", "--allow-write", "--allow-net"]],
    ["scripts/bench/client.ts", ["--allow-net=127.0.0.1"]],
    ["scripts/bench/pg_server.ts", PG_SERVER_PERMISSIONS],
  ];
  for (const [script, permissions] of scripts) {
    await t.step(script, async () => {
      const help = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--quiet", ...permissions, script, "--help"],
        cwd: new URL("../..", import.meta.url),
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(help.code, 0, new TextDecoder().decode(help.stderr));
      assert.match(new TextDecoder().decode(help.stdout), new RegExp(`^Usage: ${script} `));
      const bad = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--quiet", ...permissions, script, "--bogus"],
        cwd: new URL("../..", import.meta.url),
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(bad.code, 2);
      assert.match(new TextDecoder().decode(bad.stderr), /^error: unknown option '--bogus'/);
    });
  }
});
