/**
 * `relay leases`: the leases of a real server's database, claimed over
 * HTTP, shown with a summary per pool; `--plain`, `--json`, a terminal's
 * boxed table, `--pool`, and the errors.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { formatSpan } from "../../lib/time.ts";
import { run } from "../../cli/program.ts";
import { openStore } from "../../lib/storage/open.ts";
import { type MintedFile, mintFiles, tempDir } from "../helpers.ts";
import { claim } from "../server/http_support.ts";
import { FakeClock, serveInProcess } from "../server/in_process.ts";
import { dbPath, exists, fileArgs, rfc3339, runRelay } from "./support.ts";

const COLUMNS = [
  "node",
  "license",
  "pool",
  "claimed_at",
  "last_heartbeat_at",
  "expires_at",
  "expires_in",
  "status",
];

/** The plain layout, written out independently of `cli/output.ts`. */
function plain(rows: string[][]): string {
  const all = [COLUMNS, ...rows];
  const widths = COLUMNS.map((_, i) => Math.max(...all.map((row) => row[i].length)));
  const line = (row: string[]) =>
    `| ${row.map((cell, i) => cell + " ".repeat(widths[i] - cell.length)).join(" | ")} |\n`;
  return line(COLUMNS) + `+${widths.map((w) => "-".repeat(w + 2)).join("+")}+\n` +
    rows.map(line).join("");
}

/**
 * Licenses `a`, `b` and `c` (whose file runs out in 3 days) in pool `prod`,
 * `d` without a pool, and an empty pool `dev`. A server with `--ttl 30s`
 * whose reaper never runs leases `a` to node-a at T, `b` to node-b and `d`
 * to node-c at T+20; the clock then stands at T+40, where node-a's lease
 * has expired (not reaped) and the others have 10 s left.
 */
async function fixture(dir: string) {
  const clock = new FakeClock();
  const t = clock.unix();
  const add = async (files: MintedFile[], publicKey: string, pool: string[]) => {
    const result = await runRelay(["add", ...fileArgs(files), "--public-key", publicKey, ...pool], {
      cwd: dir,
      now: clock.now(),
    });
    assert.equal(result.code, 0, result.stderr);
  };
  const { publicKey, files: [a, b, d, e] } = await mintFiles(dir, 4, { issued: clock.now() });
  const { files: [c] } = await mintFiles(dir, 1, { issued: clock.now(), ttl: 3 * 86_400 });
  await add([a, b, c], publicKey, ["--pool", "prod"]);
  await add([d], publicKey, []);
  await add([e], publicKey, ["--pool", "dev"]);
  const del = await runRelay(["del", "--license", e.id], { cwd: dir, now: clock.now() });
  assert.equal(del.code, 0, del.stderr);

  await using server = await serveInProcess(["--ttl", "30s", "--cull-interval", "1h"], {
    database: dbPath(dir),
    clock,
  });
  assert.equal((await claim(server, "node-a", "prod")).status, 201);
  clock.advance(20);
  assert.equal((await claim(server, "node-b", "prod")).status, 201);
  assert.equal((await claim(server, "node-c")).status, 201);
  clock.advance(20);
  assert.equal((await server.stop()).code, 0);

  const rows = {
    a: ["node-a", a.id, "prod", rfc3339(t), rfc3339(t), rfc3339(t + 30), "-10s", "expired"],
    b: ["node-b", b.id, "prod", rfc3339(t + 20), rfc3339(t + 20), rfc3339(t + 50), "10s", "leased"],
    d: ["node-c", d.id, "-", rfc3339(t + 20), rfc3339(t + 20), rfc3339(t + 50), "10s", "leased"],
  };
  const summary = {
    none: "no pool: 1 license, 1 leased, 0 free, 0 files expiring within 7 days, " +
      "0 denials in the last 24h\n",
    prod: "pool prod: 3 licenses, 1 leased, 1 expired lease not reaped, 1 free, " +
      "1 file expiring within 7 days, 0 denials in the last 24h\n",
    dev: "pool dev: 0 licenses, 0 leased, 0 free, 0 files expiring within 7 days, " +
      "0 denials in the last 24h\n",
  };
  return { clock, t, files: { a, b, c, d }, rows, summary };
}

Deno.test("relay leases shows each pool's summary and every lease of a served database", async (t) => {
  await using dir = await tempDir();
  const { clock, rows, summary, files, t: t0 } = await fixture(dir.path);
  const leases = (args: string[], env?: Record<string, string>) =>
    runRelay(["leases", ...args], { cwd: dir.path, now: clock.now(), env });

  await t.step("--plain: the summaries, then the table", async () => {
    const result = await leases(["--plain"]);
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.equal(
      result.stdout,
      summary.none + summary.prod + summary.dev + "\n" + plain([rows.a, rows.b, rows.d]),
    );
  });

  await t.step("output that is not a terminal is plain", async () => {
    const result = await leases([], { NO_COLOR: "" });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, (await leases(["--plain"])).stdout);
  });

  await t.step("--pool prod, and RELAY_POOL", async () => {
    const expected = summary.prod + "\n" + plain([rows.a, rows.b]);
    const flag = await leases(["--plain", "--pool", "prod"]);
    assert.equal(flag.code, 0, flag.stderr);
    assert.equal(flag.stdout, expected);
    assert.equal((await leases(["--plain"], { RELAY_POOL: "prod" })).stdout, expected);
  });

  await t.step("a pool without leases says so", async () => {
    const result = await leases(["--pool", "dev"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, summary.dev + "\nno license is leased\n");
  });

  await t.step("--json", async () => {
    const result = await leases(["--json", "--pool", "prod"]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), {
      pools: [{
        pool: "prod",
        licenses: 3,
        leased: 1,
        expired_leases: 1,
        free: 1,
        expiring: 1,
        expired: 0,
        denials_24h: 0,
      }],
      leases: [
        {
          node: "node-a",
          node_id: 1,
          license: files.a.id,
          pool: "prod",
          status: "expired",
          claimed_at: rfc3339(t0),
          last_heartbeat_at: rfc3339(t0),
          expires_at: rfc3339(t0 + 30),
          expires_in: -10,
          seats: 1,
          seats_used: 1,
        },
        {
          node: "node-b",
          node_id: 2,
          license: files.b.id,
          pool: "prod",
          status: "leased",
          claimed_at: rfc3339(t0 + 20),
          last_heartbeat_at: rfc3339(t0 + 20),
          expires_at: rfc3339(t0 + 50),
          expires_in: 10,
          seats: 1,
          seats_used: 1,
        },
      ],
    });
  });

  await t.step("a terminal gets boxed tables unless --plain", async () => {
    const onTerminal = async (args: string[]) => {
      let stdout = "";
      const code = await run(["--database", dbPath(dir.path), "leases", ...args], {
        stdout: (text) => (stdout += text),
        stderr: () => {},
        env: {},
        stdoutIsTerminal: true,
        stderrIsTerminal: true,
        now: () => clock.now(),
      });
      assert.equal(code, 0);
      return stdout;
    };
    const boxed = await onTerminal([]);
    assert.ok(boxed.startsWith(summary.none + summary.prod + summary.dev + "\n┌"), boxed);
    for (const row of [rows.a, rows.b, rows.d]) {
      assert.ok(row.every((cell) => boxed.includes(cell)), row.join(" "));
    }
    assert.equal(await onTerminal(["--plain"]), (await leases(["--plain"])).stdout);
  });

  await t.step(
    "a lease stored without an expiry (Keygen Relay's) is live, expiry `-`",
    async () => {
      const db = new DatabaseSync(dbPath(dir.path));
      db.prepare("UPDATE nodes SET lease_expires_at = NULL WHERE fingerprint = 'node-a'").run();
      db.close();
      const result = await leases(["--plain", "--pool", "prod"]);
      assert.equal(
        result.stdout,
        summary.prod.replace("1 leased, 1 expired lease not reaped", "2 leased") + "\n" +
          plain([
            ["node-a", files.a.id, "prod", rfc3339(t0), rfc3339(t0), "-", "-", "leased"],
            rows.b,
          ]),
      );
    },
  );
});

Deno.test("relay leases on an empty database, and its errors", async (t) => {
  await using dir = await tempDir();

  await t.step("a missing database is an error naming it, and is not created", async () => {
    const result = await runRelay(["leases"], { cwd: dir.path });
    assert.equal(result.stderr, `error: Cannot open database "./relay.sqlite": no such file\n`);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.equal(await exists(dbPath(dir.path)), false);
  });

  await (await openStore(dbPath(dir.path), { now: 0 })).close();
  for (
    const [args, expected] of [
      [["leases"], "license pool is empty\n"],
      [["leases", "--json"], '{"pools":[],"leases":[]}\n'],
    ] as [string[], string][]
  ) {
    await t.step(args.join(" "), async () => {
      const result = await runRelay(args, { cwd: dir.path });
      assert.equal(result.stderr, "");
      assert.equal(result.code, 0);
      assert.equal(result.stdout, expected);
    });
  }

  await t.step("an unknown pool", async () => {
    const result = await runRelay(["leases", "--pool", "nope"], { cwd: dir.path });
    assert.equal(result.stderr, 'error: Pool "nope" not found\n');
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
  });
});

Deno.test("formatSpan() writes the two largest units, negative with a minus", () => {
  for (
    const [seconds, text] of [
      [0, "0s"],
      [45, "45s"],
      [60, "1m"],
      [125, "2m5s"],
      [3600, "1h"],
      [5400, "1h30m"],
      [3661, "1h1m"],
      [86_400, "1d"],
      [6 * 86_400 + 23 * 3600 + 59, "6d23h"],
      [-10, "-10s"],
      [-77, "-1m17s"],
    ] as [number, string][]
  ) {
    assert.equal(formatSpan(seconds), text, String(seconds));
  }
});
