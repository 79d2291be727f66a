/**
 * `relay serve` as an operator runs it: flags and environment variables, the
 * start-up line and start-up errors. These stay on SQLite: they are about
 * options and the database file (its default path, a missing folder), not
 * about leases; request logs (serve_logs_test.ts) and graceful shutdown
 * (serve_shutdown_test.ts) run on both engines.
 *
 * Flags, environment variables and logs are tested on the command run
 * in-process (the same `run()` as the binary); the real process is spawned
 * for what only it shows: its defaults relative to its working folder, exit
 * codes of `main.ts`, and the signals that stop it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { addMinted, query, runInProcess, tempDir } from "../helpers.ts";
import {
  assertEmpty,
  assertJson,
  call,
  claim,
  createdBody,
  dbPath,
  exists,
  freePort,
  relayClock,
  release,
  runRelay,
  spawnRelay,
} from "./http_support.ts";
import { serveInProcess } from "./in_process.ts";

const LOCAL = ["--bind", "127.0.0.1", "--port", "0"];

Deno.test("the start-up line", async (t) => {
  await using dir = await tempDir();

  await t.step("defaults, as JSON because stdout is not a terminal", async () => {
    await using server = await spawnRelay(["serve", ...LOCAL], { cwd: dir.path });
    const { time, ...rest } = server.startup;
    assert.ok(Math.abs(Date.parse(String(time)) - Date.now()) < 10_000, `time ${time}`);
    assert.deepEqual(rest, {
      level: "notice",
      msg: "relay listening",
      address: `http://127.0.0.1:${server.port}`,
      port: server.port,
      database: "./relay.sqlite",
      pool: "all",
      strategy: "fifo",
      ttl: "60s",
      heartbeats: true,
      signing: false,
      audit: true,
      audit_retention: "forever",
    });
    assert.ok(server.port > 0);
    assert.equal(server.lines[0], JSON.stringify(server.startup), "the first stdout line");
    assertEmpty(await call(server.url, "GET", "/v1/health"), 200);
    const { status, stdout, stderr } = await server.stop();
    assert.equal(status.code, 0);
    assert.equal(stderr, "");
    assert.deepEqual(
      stdout.trimEnd().split("\n").map((line) => JSON.parse(line).msg),
      ["relay listening", "relay stopping: finishing requests in flight", "relay stopped"],
    );
    assert.ok(await exists(dbPath(dir.path)), "the default database is created");
  });

  await t.step("flags", async () => {
    await using server = await serveInProcess([
      "--pool",
      "prod",
      "--strategy",
      "lifo",
      "--ttl",
      "2m",
      "--no-heartbeats",
      "--signing-secret",
      "s3cret",
    ], { database: dbPath(dir.path) });
    assert.equal(server.startup.pool, "prod");
    assert.equal(server.startup.strategy, "lifo");
    assert.equal(server.startup.ttl, "120s");
    assert.equal(server.startup.heartbeats, false);
    assert.equal(server.startup.signing, true);
    assert.ok(!server.lines[0].includes("s3cret"), "the secret is not logged");
  });

  await t.step("environment variables", async () => {
    await using server = await serveInProcess([], {
      database: dbPath(dir.path),
      env: {
        RELAY_POOL: "dev",
        RELAY_STRATEGY: "rand",
        RELAY_LEASE_TTL: "90s",
        RELAY_NO_HEARTBEATS: "1",
        RELAY_SIGNING_SECRET: "s3cret",
        RELAY_NO_AUDIT: "true",
      },
    });
    assert.equal(server.startup.pool, "dev");
    assert.equal(server.startup.strategy, "rand");
    assert.equal(server.startup.ttl, "90s");
    assert.equal(server.startup.heartbeats, false);
    assert.equal(server.startup.signing, true);
    assert.equal(server.startup.audit, false);
  });

  await t.step("flags win over environment variables", async () => {
    await using server = await serveInProcess(
      ["--strategy", "fifo", "--ttl", "45s", "--pool", "prod"],
      {
        database: dbPath(dir.path),
        env: { RELAY_STRATEGY: "lifo", RELAY_LEASE_TTL: "90s", RELAY_POOL: "dev" },
      },
    );
    assert.equal(server.startup.strategy, "fifo");
    assert.equal(server.startup.ttl, "45s");
    assert.equal(server.startup.pool, "prod");
  });
});

Deno.test("--port, -p, RELAY_PORT, PORT", async (t) => {
  await using dir = await tempDir();
  const cases: [string, (port: number) => string[], (port: number) => Record<string, string>][] = [
    ["--port", (port) => ["--port", String(port)], () => ({})],
    ["-p", (port) => ["-p", String(port)], () => ({})],
    ["RELAY_PORT", () => [], (port) => ({ RELAY_PORT: String(port) })],
    ["PORT", () => [], (port) => ({ PORT: String(port) })],
    [
      "RELAY_PORT over PORT",
      () => [],
      (port) => ({ RELAY_PORT: String(port), PORT: String(freePort()) }),
    ],
    [
      "--port over RELAY_PORT and PORT",
      (port) => ["--port", String(port)],
      () => ({ RELAY_PORT: String(freePort()), PORT: String(freePort()) }),
    ],
  ];
  for (const [name, args, env] of cases) {
    await t.step(name, async () => {
      const port = freePort();
      await using server = await serveInProcess([], {
        database: dbPath(dir.path),
        listen: ["--bind", "127.0.0.1", ...args(port)],
        env: env(port),
      });
      assert.equal(server.port, port);
      assert.equal(server.startup.address, `http://127.0.0.1:${port}`);
      assertEmpty(
        await call(
          { url: `http://127.0.0.1:${port}`, clock: server.clock, client: server.client },
          "GET",
          "/v1/health",
        ),
        200,
      );
    });
  }
});

Deno.test("--bind, -b, RELAY_ADDR, BIND_ADDR", async (t) => {
  await using dir = await tempDir();
  const cases: [string, string[], Record<string, string>, string][] = [
    ["--bind", ["--bind", "127.0.0.2"], {}, "127.0.0.2"],
    ["-b", ["-b", "127.0.0.3"], {}, "127.0.0.3"],
    ["RELAY_ADDR", [], { RELAY_ADDR: "127.0.0.4" }, "127.0.0.4"],
    ["BIND_ADDR", [], { BIND_ADDR: "127.0.0.5" }, "127.0.0.5"],
    [
      "RELAY_ADDR over BIND_ADDR",
      [],
      { RELAY_ADDR: "127.0.0.6", BIND_ADDR: "127.0.0.7" },
      "127.0.0.6",
    ],
    ["--bind over RELAY_ADDR", ["--bind", "127.0.0.8"], { RELAY_ADDR: "127.0.0.9" }, "127.0.0.8"],
  ];
  for (const [name, args, env, host] of cases) {
    await t.step(name, async () => {
      await using server = await serveInProcess([], {
        database: dbPath(dir.path),
        listen: ["--port", "0", ...args],
        env,
        host,
      });
      assert.equal(server.startup.address, `http://${host}:${server.port}`);
      assertEmpty(await call(server, "GET", "/v1/health"), 200);
      // Bound to that address only: 127.0.0.1 is not served.
      await assert.rejects(fetch(`http://127.0.0.1:${server.port}/v1/health`));
    });
  }

  await t.step("default 0.0.0.0", async () => {
    await using server = await serveInProcess([], {
      database: dbPath(dir.path),
      listen: ["--port", "0"],
    });
    assert.equal(server.startup.address, `http://0.0.0.0:${server.port}`);
    assertEmpty(await call(server, "GET", "/v1/health"), 200);
  });
});

Deno.test("--database and RELAY_DATABASE", async (t) => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/data`);
  const [file] = await addMinted(dir.path, 1, { database: "data/x.sqlite" });
  // In-process the working folder is the test's: name the files by absolute path.
  const db = `${dir.path}/data/x.sqlite`;
  const other = `${dir.path}/other.sqlite`;
  let claims = 0;

  for (
    const [name, args, env] of [
      ["--database", ["--database", db], {}],
      ["RELAY_DATABASE", [], { RELAY_DATABASE: db }],
      ["--database over RELAY_DATABASE", ["--database", db], { RELAY_DATABASE: other }],
    ] as const
  ) {
    await t.step(name, async () => {
      await using server = await serveInProcess([], { global: [...args], env });
      assert.equal(server.startup.database, db);
      const reply = await claim(server, "n1");
      assertJson(reply, 201, createdBody(file.certificate, file.key, relayClock(reply), 60));
      assertEmpty(await release(server, "n1"), 204);
      const { code } = await server.stop();
      assert.equal(code, 0);
      assert.equal(await exists(dbPath(dir.path)), false, "no ./relay.sqlite");
      assert.equal(await exists(other), false);
      claims++;
      assert.deepEqual(query(db, "SELECT claims FROM licenses"), [{ claims }]);
    });
  }

  await t.step("a relative path, in the working folder of the real process", async () => {
    await using server = await spawnRelay(["serve", ...LOCAL, "--database", "data/x.sqlite"], {
      cwd: dir.path,
    });
    assert.equal(server.startup.database, "data/x.sqlite");
    const reply = await claim(server.url, "n1");
    assertJson(reply, 201, createdBody(file.certificate, file.key, relayClock(reply), 60));
    assertEmpty(await release(server.url, "n1"), 204);
    const { status } = await server.stop();
    assert.equal(status.code, 0);
    assert.equal(await exists(dbPath(dir.path)), false, "no ./relay.sqlite");
    claims++;
    assert.deepEqual(query(db, "SELECT claims FROM licenses"), [{ claims }]);
  });

  await t.step("a database in a folder that does not exist: exit 1", async () => {
    const result = await runRelay(["serve", ...LOCAL, "--database", "missing/x.sqlite"], {
      cwd: dir.path,
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: .*folder does not exist\n$/);
    assert.equal(result.stdout, "");
  });
});

Deno.test("invalid settings exit 2 before opening the database", async (t) => {
  await using dir = await tempDir();
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    ["--ttl 29s", ["--ttl", "29s"], {}, /^error: time-to-live value must be at least 30s\n$/],
    ["--ttl abc", ["--ttl", "abc"], {}, /^error: .*abc/],
    ["RELAY_LEASE_TTL=10s", [], { RELAY_LEASE_TTL: "10s" }, /^error: time-to-live value/],
    ["--port 70000", ["--port", "70000"], {}, /^error: .*70000/],
    ["--port abc", ["--port", "abc"], {}, /^error: .*abc/],
    ["RELAY_PORT=-1", [], { RELAY_PORT: "-1" }, /^error: /],
    ["--strategy bogus", ["--strategy", "bogus"], {}, /^error: .*bogus/],
    ["RELAY_STRATEGY=bogus", [], { RELAY_STRATEGY: "bogus" }, /^error: .*bogus/],
    ["--cull-interval 10ms", ["--cull-interval", "10ms"], {}, /^error: /],
    // Beyond 24h a timer would overflow 32 bits and fire every millisecond.
    ["--cull-interval 1000h", ["--cull-interval", "1000h"], {}, /^error: Cull interval .*24h/],
    ["RELAY_CULL_INTERVAL=25h", [], { RELAY_CULL_INTERVAL: "25h" }, /^error: Cull interval/],
    ["an unknown flag", ["--nope"], {}, /^error: /],
  ];
  for (const [name, args, env, stderr] of cases) {
    await t.step(name, async () => {
      const result = await runInProcess(["serve", "--bind", "127.0.0.1", ...args], {
        now: new Date(),
        env: { RELAY_DATABASE: dbPath(dir.path), ...env },
      });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, stderr);
      assert.ok(!result.stdout.includes("relay listening"));
      assert.equal(await exists(dbPath(dir.path)), false, "no database created");
    });
  }

  await t.step("the real process exits 2 with the error alone", async () => {
    const result = await runRelay(["serve", "--bind", "127.0.0.1", "--ttl", "29s"], {
      cwd: dir.path,
    });
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stderr, "error: time-to-live value must be at least 30s\n");
    assert.equal(result.stdout, "");
    assert.equal(await exists(dbPath(dir.path)), false, "no database created");
  });
});

Deno.test("a port already in use: exit 1 with one error line", async () => {
  await using dir = await tempDir();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  const result = await runRelay(["serve", "--bind", "127.0.0.1", "--port", String(port)], {
    cwd: dir.path,
  });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^error: [^\n]*already in use[^\n]*\n$/);
  assert.ok(result.stderr.includes(String(port)), "names the port");
  assert.ok(!result.stdout.includes("relay listening"));
});
