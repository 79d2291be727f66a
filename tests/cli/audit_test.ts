/**
 * `relay audit` on the log of a real server's database: the table, the
 * filters, JSON and CSV, the errors, and `--follow` in-process and as a real
 * process, each printing what other connections commit while it runs.
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseLimit, parseTime } from "../../cli/audit.ts";
import { type Io, run } from "../../cli/program.ts";
import type { RelayError } from "../../lib/errors.ts";
import { mintFiles, query, tempDir, waitUntil } from "../helpers.ts";
import { claim } from "../server/http_support.ts";
import { FakeClock, serveInProcess } from "../server/in_process.ts";
import { dbPath, exists, fileArgs, rfc3339, rowId, runRelay, spawnFollowing } from "./support.ts";

const COLUMNS = ["time", "event", "license", "node", "pool"];

/** The plain layout, written out independently of `cli/output.ts`. */
function plain(rows: string[][]): string {
  const all = [COLUMNS, ...rows];
  const widths = COLUMNS.map((_, i) => Math.max(...all.map((row) => row[i].length)));
  const line = (row: string[]) =>
    `| ${row.map((cell, i) => cell + " ".repeat(widths[i] - cell.length)).join(" | ")} |\n`;
  return line(COLUMNS) + `+${widths.map((w) => "-".repeat(w + 2)).join("+")}+\n` +
    rows.map(line).join("");
}

/** A fingerprint that needs quoting in CSV and encoding in a URL. */
const ODD_NODE = 'node "c",1';

/**
 * The log of a short day, one event group every 10 s from T: licenses l1
 * and l3 added to pool prod and l2 without a pool; node-a and node-b lease
 * l1 and l3; {@link ODD_NODE} is denied; an operator releases node-a's
 * lease; l2 is deleted. Returns the expected rows by audit id (1-based).
 */
async function fixture(dir: string) {
  const clock = new FakeClock();
  const t = clock.unix();
  const relay = async (args: string[]) => {
    const result = await runRelay(args, { cwd: dir, now: clock.now() });
    assert.equal(result.code, 0, result.stderr);
  };
  const { publicKey, files: [l1, l2, l3] } = await mintFiles(dir, 3, { issued: clock.now() });
  await relay(["add", ...fileArgs([l1, l3]), "--public-key", publicKey, "--pool", "prod"]);
  await relay(["add", ...fileArgs([l2]), "--public-key", publicKey]);
  const l2Id = rowId(dbPath(dir), l2.id);
  {
    await using server = await serveInProcess(["--cull-interval", "1h"], {
      database: dbPath(dir),
      clock,
    });
    clock.advance(10);
    assert.equal((await claim(server, "node-a", "prod")).status, 201);
    clock.advance(10);
    assert.equal((await claim(server, "node-b", "prod")).status, 201);
    clock.advance(10);
    assert.equal((await claim(server, encodeURIComponent(ODD_NODE), "prod")).status, 410);
    await server.stop();
  }
  clock.advance(10);
  await relay(["release", "--node", "node-a"]);
  clock.advance(10);
  await relay(["del", "--license", l2.id]);

  const at = (seconds: number) => rfc3339(t + seconds);
  const rows: string[][] = [
    [],
    [at(0), "pool.added", "-", "-", "prod"],
    [at(0), "license.added", l1.id, "-", "prod"],
    [at(0), "license.added", l3.id, "-", "prod"],
    [at(0), "license.added", `#${l2Id}`, "-", "-"],
    [at(10), "node.activated", "-", "node-a", "prod"],
    [at(10), "license.leased", l1.id, "-", "prod"],
    [at(10), "node.heartbeat_ping", "-", "node-a", "prod"],
    [at(20), "node.activated", "-", "node-b", "prod"],
    [at(20), "license.leased", l3.id, "-", "prod"],
    [at(20), "node.heartbeat_ping", "-", "node-b", "prod"],
    [at(30), "license.denied", "-", ODD_NODE, "prod"],
    [at(40), "license.operator_released", l1.id, "-", "prod"],
    [at(40), "node.deactivated", "-", "node-a", "prod"],
    [at(50), "license.removed", `#${l2Id}`, "-", "-"],
  ];
  const pick = (...ids: number[]) => ids.map((id) => rows[id]);
  return { clock, t, files: { l1, l2, l3 }, l2Id, rows, pick };
}

Deno.test("relay audit shows the log by name, filtered, as a table, JSON or CSV", async (t) => {
  await using dir = await tempDir();
  const { clock, t: t0, files, l2Id, pick } = await fixture(dir.path);
  const audit = (args: string[]) =>
    runRelay(["audit", ...args], { cwd: dir.path, now: clock.now() });
  const all = Array.from({ length: 14 }, (_, i) => i + 1);

  for (
    const [name, args, ids] of [
      ["every event, oldest first", [], all],
      ["--limit 3: the latest three", ["--limit", "3"], [12, 13, 14]],
      ["--limit 0: all", ["--limit", "0"], all],
      [
        "--event, repeated and comma-separated",
        ["--event", "license.leased,license.denied", "--event", "node.deactivated"],
        [6, 9, 11, 13],
      ],
      ["--license", ["--license", files.l1.id], [2, 6, 12]],
      ["--node", ["--node", "node-a"], [5, 7, 13]],
      ["--license and --node: either's", ["--license", files.l1.id, "--node", "node-a"], [
        2,
        5,
        6,
        7,
        12,
        13,
      ]],
      ["--node with an odd fingerprint", ["--node", ODD_NODE], [11]],
      [
        "--pool: its events and its pool.added",
        ["--pool", "prod"],
        all.filter((id) => id !== 4 && id !== 14),
      ],
      [
        "--since and --until, RFC 3339",
        ["--since", rfc3339(t0 + 20), "--until", rfc3339(t0 + 40)],
        [
          8,
          9,
          10,
          11,
          12,
          13,
        ],
      ],
      ["--since as a duration ago", ["--since", "10s"], [12, 13, 14]],
      ["--since with an offset", [
        "--since",
        new Date((t0 + 30) * 1000).toISOString().replace(/\.000Z$/, "+00:00"),
      ], [11, 12, 13, 14]],
      ["filters combine", ["--pool", "prod", "--event", "license.leased", "--limit", "1"], [9]],
    ] as [string, string[], number[]][]
  ) {
    await t.step(name, async () => {
      const result = await audit(["--plain", ...args]);
      assert.equal(result.stderr, "");
      assert.equal(result.code, 0);
      assert.equal(result.stdout, plain(pick(...ids)));
    });
  }

  await t.step("nothing matching says so", async () => {
    const result = await audit(["--event", "node.culled"]);
    assert.equal(result.stdout, "no audit events\n");
    assert.equal(result.code, 0);
  });

  await t.step("--json", async () => {
    const result = await audit(["--json", "--limit", "4"]);
    assert.equal(result.code, 0, result.stderr);
    const db = dbPath(dir.path);
    const nodeA = query<{ id: number }>(db, "SELECT id FROM nodes WHERE fingerprint = 'node-a'");
    assert.deepEqual(JSON.parse(result.stdout), [
      {
        id: 11,
        time: rfc3339(t0 + 30),
        event: "license.denied",
        entity: "node",
        entity_id: 3,
        license: null,
        node: ODD_NODE,
        pool: "prod",
        user: null,
      },
      {
        id: 12,
        time: rfc3339(t0 + 40),
        event: "license.operator_released",
        entity: "license",
        entity_id: rowId(db, files.l1.id),
        license: files.l1.id,
        node: null,
        pool: "prod",
        user: null,
      },
      {
        id: 13,
        time: rfc3339(t0 + 40),
        event: "node.deactivated",
        entity: "node",
        entity_id: nodeA[0].id,
        license: null,
        node: "node-a",
        pool: "prod",
        user: null,
      },
      {
        id: 14,
        time: rfc3339(t0 + 50),
        event: "license.removed",
        entity: "license",
        entity_id: l2Id,
        license: null,
        node: null,
        pool: null,
        user: null,
      },
    ]);
  });

  await t.step("--csv: a header row, fields quoted where needed", async () => {
    const result = await audit(["--csv", "--since", rfc3339(t0 + 30)]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout,
      "id,time,event,entity,entity_id,license,node,pool,user\n" +
        `11,${rfc3339(t0 + 30)},license.denied,node,3,,"node ""c"",1",prod,\n` +
        `12,${rfc3339(t0 + 40)},license.operator_released,license,1,${files.l1.id},,prod,\n` +
        `13,${rfc3339(t0 + 40)},node.deactivated,node,1,,node-a,prod,\n` +
        `14,${rfc3339(t0 + 50)},license.removed,license,${l2Id},,,,\n`,
    );
  });

  await t.step("a terminal gets a boxed table unless --plain", async () => {
    let stdout = "";
    const code = await run(["--database", dbPath(dir.path), "audit", "--limit", "2"], {
      stdout: (text) => (stdout += text),
      stderr: () => {},
      env: {},
      stdoutIsTerminal: true,
      stderrIsTerminal: true,
      now: () => clock.now(),
    });
    assert.equal(code, 0);
    assert.ok(stdout.startsWith("┌"), stdout);
    for (const cell of [...pick(13, 14).flat()]) assert.ok(stdout.includes(cell), cell);
  });
});

Deno.test("relay audit refuses bad filters and never creates a database", async (t) => {
  await using dir = await tempDir();

  await t.step("a missing database is an error naming it, and is not created", async () => {
    const result = await runRelay(["audit"], { cwd: dir.path });
    assert.equal(result.stderr, `error: Cannot open database "./relay.sqlite": no such file\n`);
    assert.equal(result.code, 1);
    assert.equal(await exists(dbPath(dir.path)), false);
  });

  const { files, publicKey } = await mintFiles(dir.path, 1);
  const added = await runRelay(["add", ...fileArgs(files), "--public-key", publicKey], {
    cwd: dir.path,
  });
  assert.equal(added.code, 0, added.stderr);

  const names = "license.added, license.removed, license.leased, license.lease_extended, " +
    "license.released, license.lease_expired, node.activated, node.heartbeat_ping, " +
    "node.deactivated, node.culled, pool.added, license.denied, license.operator_released, " +
    "license.renewed, user.activated, user.heartbeat_ping, user.deactivated, user.culled";
  for (
    const [name, args, code, message] of [
      [
        "an unknown event",
        ["--event", "license.leased,license.stolen"],
        2,
        `Unknown event "license.stolen": use one of ${names}`,
      ],
      [
        "a bad time",
        ["--since", "yesterday"],
        2,
        'Invalid time "yesterday": use an RFC 3339 time (2025-12-01T09:00:00Z) or a duration ago (1h, 7d)',
      ],
      [
        "a time without a zone",
        ["--until", "2025-12-01T09:00:00"],
        2,
        'Invalid time "2025-12-01T09:00:00": use an RFC 3339 time (2025-12-01T09:00:00Z) or a duration ago (1h, 7d)',
      ],
      [
        "a bad limit",
        ["--limit", "-1"],
        2,
        'Invalid limit "-1": use a whole number (0 for no limit)',
      ],
      ["--json with --csv", ["--json", "--csv"], 2, "Give --json or --csv, not both"],
      [
        "--follow with --until",
        ["--follow", "--until", "1h"],
        2,
        "--until cannot be used with --follow",
      ],
      ["an unknown license", ["--license", "nope"], 1, 'License "nope" not found'],
      ["an unknown node", ["--node", "nope"], 1, 'Node "nope" not found'],
      ["an unknown user", ["--user", "nope@example.com"], 1, 'User "nope@example.com" not found'],
      ["an unknown pool", ["--pool", "nope"], 1, 'Pool "nope" not found'],
    ] as [string, string[], number, string][]
  ) {
    await t.step(name, async () => {
      const result = await runRelay(["audit", ...args], { cwd: dir.path });
      assert.equal(result.stderr, `error: ${message}\n`);
      assert.equal(result.code, code);
      assert.equal(result.stdout, "");
    });
  }
});

Deno.test("relay audit --follow prints events other connections commit, until shut down", async () => {
  await using dir = await tempDir();
  const { files: [license], publicKey } = await mintFiles(dir.path, 1);
  const added = await runRelay(["add", ...fileArgs([license]), "--public-key", publicKey], {
    cwd: dir.path,
  });
  assert.equal(added.code, 0, added.stderr);
  await using server = await serveInProcess([], { database: dbPath(dir.path) });

  let stdout = "";
  const shutdown = new AbortController();
  const io: Io = {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stdout += `stderr: ${text}`),
    env: { NO_COLOR: "1", INIT_CWD: dir.path },
    stdoutIsTerminal: false,
    stderrIsTerminal: false,
    now: () => new Date(),
    shutdown: shutdown.signal,
  };
  const lines = () => stdout.split("\n").filter(Boolean).map((line) => JSON.parse(line));
  const following = run(
    ["audit", "--follow", "--json", "--event", "license.leased,license.released"],
    io,
  );
  // Nothing matches yet: no backlog, but the command keeps running.
  assert.equal(stdout, "");

  assert.equal((await claim(server.url, "node-1")).status, 201);
  await waitUntil(() => lines().length === 1, "the lease");
  assert.equal((await fetch(`${server.url}/v1/nodes/node-1`, { method: "DELETE" })).status, 204);
  assert.equal((await claim(server.url, "node-2")).status, 201);
  await waitUntil(() => lines().length === 3, "the release and the next lease");
  assert.deepEqual(
    lines().map((line) => [line.event, line.license]),
    [
      ["license.leased", license.id],
      ["license.released", license.id],
      ["license.leased", license.id],
    ],
  );
  assert.ok(lines().every((line, i, all) => i === 0 || line.id > all[i - 1].id));

  shutdown.abort();
  assert.equal(await following, 0);
  await server.stop();
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`relay audit --follow as a real process: a table that grows, stopped by ${signal}`, async () => {
    await using dir = await tempDir();
    const { files: [license], publicKey } = await mintFiles(dir.path, 1);
    const added = await runRelay(["add", ...fileArgs([license]), "--public-key", publicKey], {
      cwd: dir.path,
    });
    assert.equal(added.code, 0, added.stderr);

    await using relay = spawnFollowing(["audit", "--follow", "--limit", "1"], { cwd: dir.path });
    {
      const rows = () => relay.stdout().split("\n").filter((line) => line.startsWith("| 2"));
      await waitUntil(() => rows().length === 1, "the latest event");
      assert.match(
        relay.stdout(),
        /^\| time {17}\| event {21}\| license {30}\| node {9}\| pool {5}\|\n\+-{22}\+/,
      );
      assert.match(
        rows()[0],
        new RegExp(`\\| license\\.added +\\| ${license.id} \\| - +\\| - +\\|$`),
      );

      await using server = await serveInProcess([], { database: dbPath(dir.path) });
      assert.equal((await claim(server.url, "node-1")).status, 201);
      await waitUntil(() => rows().length === 4, "the claim's three events");
      assert.deepEqual(
        rows().slice(1).map((row) => row.split("|").map((cell) => cell.trim())[2]),
        ["node.activated", "license.leased", "node.heartbeat_ping"],
      );
      await server.stop();

      assert.deepEqual(await relay.stop(signal), { code: 0, stderr: "" });
    }
  });
}

Deno.test("parseTime() takes RFC 3339 times, dates and durations ago; parseLimit() whole numbers", () => {
  const now = 1_800_000_000;
  for (
    const [text, expected] of [
      ["2027-01-15T08:00:00Z", Date.UTC(2027, 0, 15, 8) / 1000],
      ["2027-01-15T08:00:00.750Z", Date.UTC(2027, 0, 15, 8) / 1000],
      ["2027-01-15T09:00:00+01:00", Date.UTC(2027, 0, 15, 8) / 1000],
      ["2027-01-15 08:00:00z", Date.UTC(2027, 0, 15, 8) / 1000],
      ["2027-01-15", Date.UTC(2027, 0, 15) / 1000],
      ["90s", now - 90],
      ["1h30m", now - 5400],
      ["7d", now - 7 * 86_400],
    ] as [string, number][]
  ) {
    assert.equal(parseTime(text, now), expected, text);
  }
  for (const bad of ["", "now", "2027-01-15T08:00:00", "2027-13-45T08:00:00Z", "-1h", "1 h"]) {
    assert.throws(() => parseTime(bad, now), (error: RelayError) => error.code === "usage", bad);
  }
  assert.equal(parseLimit("25"), 25);
  assert.equal(parseLimit("0"), null);
  for (const bad of ["", "-1", "1.5", "ten", "1e3"]) {
    assert.throws(() => parseLimit(bad), (error: RelayError) => error.code === "usage", bad);
  }
});
