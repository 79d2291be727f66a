/**
 * `-v` counted as Keygen Relay counts it, through a real `relay serve` (in
 * process, its stdout captured): which log lines each level shows, that the
 * debug lines carry each lease decision, and that no level shows a license
 * key, a license file or the signing secret.
 *
 * @module
 */

import assert from "node:assert/strict";
import { addMinted, dbPath, type MintedFile, query, tempDir } from "../helpers.ts";
import { FakeClock, serveInProcess } from "../server/in_process.ts";
import { claim, release } from "../server/http_support.ts";

const SECRET = "verbosity-test-signing-secret";
const TTL = 30;
const DAY = 86_400;

type Line = Record<string, unknown>;

/** What a run of {@link session} logged, and the file it leased. */
interface Session {
  lines: Line[];
  stdout: string;
  stderr: string;
  file: MintedFile;
  /** The server's clock at the first claim, in unix seconds. */
  start: number;
}

/**
 * `relay [global] serve` over one license file that expires in 5 days: claim
 * (201), heartbeat (202), a second node (410), release (204) and again (404),
 * a third node whose lease the reaper then ends. Returns every log line.
 */
async function session(global: string[], env: Record<string, string> = {}): Promise<Session> {
  await using dir = await tempDir();
  const [file] = await addMinted(dir.path, 1);
  const database = dbPath(dir.path);
  // 25 of the file's 30 days gone: inside the 7-day expiry warning.
  const clock = new FakeClock(new Date(Date.now() + 25 * DAY * 1000));
  const server = await serveInProcess(
    ["--signing-secret", SECRET, "--ttl", `${TTL}s`, "--cull-interval", "100ms"],
    { database, global, env, clock },
  );
  const start = clock.unix();
  try {
    assert.equal((await claim(server, "n1")).status, 201);
    assert.equal((await claim(server, "n1")).status, 202);
    assert.equal((await claim(server, "n2")).status, 410);
    assert.equal((await release(server, "n1")).status, 204);
    assert.equal((await release(server, "n1")).status, 404);
    assert.equal((await claim(server, "n3")).status, 201);
    clock.advance(TTL + 1);
    await leaseEnded(database);
  } finally {
    await server.stop();
  }
  const { stdout, stderr } = await server.stop();
  const lines = stdout.trimEnd().split("\n").map((line) => JSON.parse(line) as Line);
  return { lines, stdout, stderr, file, start };
}

/** Waits (up to 10 s) for the reaper, which runs every 100 ms, to end the last lease. */
async function leaseEnded(database: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (query(database, "SELECT 1 FROM licenses WHERE node_id IS NOT NULL").length > 0) {
    assert.ok(Date.now() < deadline, "the reaper did not end the expired lease within 10 s");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `[level, msg]` of every line below debug, in order. */
function shown(lines: Line[]): [unknown, unknown][] {
  return lines.filter((line) => line.level !== "debug").map((line) => [line.level, line.msg]);
}

/** Shown at every level: the expiry warning at start, start-up and shutdown. */
const START = [
  ["warn", "license files expire soon: renew them"],
  ["notice", "relay listening"],
];
const STOP = [
  ["notice", "relay stopping: finishing requests in flight"],
  ["notice", "relay stopped"],
];
/** `-vv`: the refused claim (410) and release (404), as Keygen Relay warns of them. */
const WARNINGS = [
  ["warn", "claim refused: no license available in the pool"],
  ["warn", "release refused: the node leases no license in the pool"],
];

/** No line, at any level, shows a key, the file or the signing secret. */
function assertNoSecrets({ stdout, stderr, file }: Session): void {
  for (const text of [stdout, stderr]) {
    assert.ok(!text.includes(file.key), "no license key");
    assert.ok(!text.includes(SECRET), "no signing secret");
    for (const line of file.certificate.split("\n").slice(1, -2)) {
      if (line.length > 8) assert.ok(!text.includes(line), "no license file content");
    }
  }
}

Deno.test("relay serve without -v, and with -v, logs errors, notices and expiry warnings only", async (t) => {
  for (const global of [[], ["-v"], ["--verbose"]]) {
    await t.step(`relay ${[...global, "serve"].join(" ")}`, async () => {
      const run = await session(global);
      assert.deepEqual(run.lines.map((line) => [line.level, line.msg]), [...START, ...STOP]);
      assert.equal(run.stderr, "");
      assertNoSecrets(run);
    });
  }
});

Deno.test("relay -vv serve adds warnings: each refused claim and release", async () => {
  const run = await session(["-vv"]);
  assert.deepEqual(run.lines.map((line) => [line.level, line.msg]), [
    ...START,
    ...WARNINGS,
    ...STOP,
  ]);
  const [refused, notFound] = run.lines.filter((line) =>
    line.msg !== undefined &&
    String(line.msg).includes("refused")
  );
  assert.deepEqual(
    [refused.node, refused.pool, refused.strategy, refused.result],
    ["n2", null, "fifo", "exhausted"],
  );
  assert.deepEqual([notFound.node, notFound.result], ["n1", "not_found"]);
  assertNoSecrets(run);
});

Deno.test("relay -vvv serve adds info: one request line per request", async () => {
  const run = await session(["-vvv"]);
  const requests = run.lines.filter((line) => line.msg === "request");
  assert.deepEqual(requests.map((line) => [line.level, line.method, line.path, line.status]), [
    ["info", "PUT", "/v1/nodes/n1", 201],
    ["info", "PUT", "/v1/nodes/n1", 202],
    ["info", "PUT", "/v1/nodes/n2", 410],
    ["info", "DELETE", "/v1/nodes/n1", 204],
    ["info", "DELETE", "/v1/nodes/n1", 404],
    ["info", "PUT", "/v1/nodes/n3", 201],
  ]);
  // Nothing at debug; the warnings still show, each after its request's decision.
  assert.deepEqual(run.lines.filter((line) => line.level === "debug"), []);
  assert.deepEqual(shown(run.lines).filter(([, msg]) => msg !== "request"), [
    ...START,
    ...WARNINGS,
    ...STOP,
  ]);
  assertNoSecrets(run);
});

Deno.test("relay -vvvv serve and DEBUG=1 add debug: settings, lease decisions, the reaper", async (t) => {
  for (
    const [name, global, env] of [
      ["-vvvv", ["-vvvv"], {}],
      ["DEBUG=1", [], { DEBUG: "1" }],
      ["-vvvvv", ["-vvvvv"], {}],
    ] as const
  ) {
    await t.step(name, async () => {
      const run = await session([...global], env);
      const { lines, file, start } = run;
      const debug = (msg: string) => lines.filter((line) => line.msg === msg);
      // The lines of the levels above, as at -vvv.
      assert.equal(debug("request").length, 6);
      assert.deepEqual(
        shown(lines).filter(([, msg]) => msg !== "request"),
        [...START, ...WARNINGS, ...STOP],
      );

      const [settings] = debug("serve settings");
      assert.equal(settings.level, "debug");
      assert.deepEqual(
        [settings.strategy, settings.ttl, settings.signing, settings.pool, settings.audit],
        ["fifo", "30s", true, "all", true],
      );
      assert.equal(settings.cull_interval_ms, 100);
      assert.ok(
        lines.indexOf(settings) < lines.findIndex((line) => line.msg === "relay listening"),
        "the settings come before the server listens",
      );

      const decisions = (msg: string) =>
        debug(msg).map((line) => [line.node, line.pool, line.result, line.license]);
      assert.deepEqual(decisions("lease granted"), [
        ["n1", null, "created", file.id],
        ["n3", null, "created", file.id],
      ]);
      assert.deepEqual(decisions("lease extended"), [["n1", null, "extended", file.id]]);
      assert.deepEqual(decisions("lease released"), [["n1", null, "released", file.id]]);
      const [granted] = debug("lease granted");
      assert.equal(granted.strategy, "fifo");
      assert.equal(granted.expires_at, start + TTL);
      assert.equal(granted.heartbeats, true);

      assert.equal(debug("reaper started")[0].interval_ms, 100);
      assert.deepEqual(debug("reaped expired leases").map((line) => line.count), [1]);
      assert.equal(debug("reaper stopped").length, 1);
      assertNoSecrets(run);
    });
  }
});

Deno.test("a -v on the command line wins over DEBUG=1, as in Keygen Relay", async () => {
  const run = await session(["-vv"], { DEBUG: "1" });
  assert.deepEqual(run.lines.map((line) => [line.level, line.msg]), [
    ...START,
    ...WARNINGS,
    ...STOP,
  ]);
});
