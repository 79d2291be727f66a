/**
 * `relay serve --max-connections`, `--idle-timeout` and `--header-timeout`:
 * defaults, flags over env vars, and the values refused with exit 2 before
 * anything is opened. What the settings do is tested in
 * `tests/server/connection_pool_test.ts`, `tests/server/listener_test.ts` and
 * `tests/reliability/flood_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { serveConfig, type ServeOptions } from "../../cli/serve_config.ts";
import { tempDir } from "../helpers.ts";
import { dbPath, exists, runRelay } from "./support.ts";

/** The connection settings parsed from these flags and env vars. */
async function limits(options: Partial<ServeOptions>, env: Record<string, string> = {}) {
  const config = await serveConfig({ heartbeats: true, ...options }, {
    env,
    path: (typed) => typed,
  });
  return config.connections;
}

Deno.test("serveConfig() reads the connection cap and timeouts: flag, then env var, then default", async (t) => {
  await t.step("defaults: 4096 connections, 60 s idle, 10 s for headers", async () => {
    assert.deepEqual(await limits({}), {
      maxConnections: 4096,
      idleTimeoutMs: 60_000,
      headerTimeoutMs: 10_000,
    });
  });

  await t.step("env vars", async () => {
    assert.deepEqual(
      await limits({}, {
        RELAY_MAX_CONNECTIONS: "512",
        RELAY_IDLE_TIMEOUT: "2m",
        RELAY_HEADER_TIMEOUT: "1.5s",
      }),
      { maxConnections: 512, idleTimeoutMs: 120_000, headerTimeoutMs: 1_500 },
    );
  });

  await t.step("flags win over env vars", async () => {
    assert.deepEqual(
      await limits({ maxConnections: "1", idleTimeout: "100ms", headerTimeout: "24h" }, {
        RELAY_MAX_CONNECTIONS: "512",
        RELAY_IDLE_TIMEOUT: "2m",
        RELAY_HEADER_TIMEOUT: "1.5s",
      }),
      { maxConnections: 1, idleTimeoutMs: 100, headerTimeoutMs: 86_400_000 },
    );
  });
});

Deno.test("relay serve refuses a bad connection cap or timeout with exit 2", async (t) => {
  await using dir = await tempDir();
  const cases: [string[], Record<string, string>, string][] = [
    [
      ["--max-connections", "0"],
      {},
      'error: Invalid connection cap "0": use a whole number from 1 to 1000000\n',
    ],
    [
      ["--max-connections", "many"],
      {},
      'error: Invalid connection cap "many": use a whole number from 1 to 1000000\n',
    ],
    [
      [],
      { RELAY_MAX_CONNECTIONS: "1.5" },
      'error: Invalid connection cap "1.5": use a whole number from 1 to 1000000\n',
    ],
    [
      ["--max-connections", "1000001"],
      {},
      'error: Invalid connection cap "1000001": use a whole number from 1 to 1000000\n',
    ],
    [["--idle-timeout", "50ms"], {}, "error: Idle timeout must be from 100ms to 24h\n"],
    [[], { RELAY_IDLE_TIMEOUT: "25h" }, "error: Idle timeout must be from 100ms to 24h\n"],
    [["--header-timeout", "0s"], {}, "error: Header timeout must be from 100ms to 24h\n"],
    [
      ["--header-timeout", "soon"],
      {},
      'error: Invalid duration "soon": use a number with a unit, like 30s, 1m, 1h or 1h30m\n',
    ],
  ];
  for (const [args, env, stderr] of cases) {
    await t.step(
      [...args, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join(" "),
      async () => {
        const result = await runRelay(["serve", "--bind", "127.0.0.1", "--port", "0", ...args], {
          cwd: dir.path,
          env,
        });
        assert.deepEqual([result.code, result.stderr, result.stdout], [2, stderr, ""]);
        assert.equal(await exists(dbPath(dir.path)), false, "no database created");
      },
    );
  }
});
