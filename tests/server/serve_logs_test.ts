/**
 * The request log of `relay serve` (`-v` levels, `DEBUG`), and what it never
 * shows (license keys, files, the signing secret), on the command run
 * in-process, once per storage engine (see scenario_support.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertEmpty, logLines, type Target } from "./http_support.ts";
import { scenario } from "./scenario_support.ts";

scenario("request logs and secrets", async (t, s) => {
  const [file] = await s.db.add(1);
  const [pooled] = await s.db.add(1, { pool: "prod" });
  const secret = "s3cret-Signing-Value";

  /** Claim, heartbeat, release, a few errors: the requests every step makes. */
  async function traffic(url: Target): Promise<void> {
    assertEmpty(await s.call(url, "GET", "/v1/health"), 200);
    assert.equal((await s.claim(url, "n1")).status, 201);
    assert.equal((await s.claim(url, "n1")).status, 202);
    assert.equal((await s.claim(url, "n2", "prod")).status, 201);
    assert.equal((await s.claim(url, "n3")).status, 410);
    assert.equal((await s.call(url, "POST", "/v1/nodes/n1")).status, 405);
    assert.equal((await s.claim(url, "n4", "nope")).status, 400);
    assertEmpty(await s.release(url, "n1"), 204);
    assertEmpty(await s.release(url, "n2", "prod"), 204);
    assert.equal((await s.release(url, "n1")).status, 404);
  }
  const expected = [
    ["GET", "/v1/health", 200],
    ["PUT", "/v1/nodes/n1", 201],
    ["PUT", "/v1/nodes/n1", 202],
    ["PUT", "/v1/nodes/n2", 201],
    ["PUT", "/v1/nodes/n3", 410],
    ["POST", "/v1/nodes/n1", 405],
    ["PUT", "/v1/nodes/n4", 400],
    ["DELETE", "/v1/nodes/n1", 204],
    ["DELETE", "/v1/nodes/n2", 204],
    ["DELETE", "/v1/nodes/n1", 404],
  ];

  await t.step("without -v: no request lines", async () => {
    await using server = await s.serve([]);
    await traffic(server);
    const { code, stdout, stderr } = await server.stop();
    assert.equal(code, 0);
    assert.equal(stderr, "");
    assert.deepEqual(logLines(stdout.trimEnd().split("\n"), "request"), []);
    assert.equal(stdout.trimEnd().split("\n").length, 3, stdout);
  });

  for (const [global, args] of [[["-vvv"], []], [[], ["-vvv"]]]) {
    await t.step(
      `relay ${[...global, "serve", ...args].join(" ")}: one JSON line per request`,
      async () => {
        await using server = await s.serve(args, { global });
        await traffic(server);
        const { code, stdout, stderr } = await server.stop();
        assert.equal(code, 0);
        assert.equal(stderr, "");
        const lines = stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
        const requests = lines.filter((line) => line.msg === "request");
        assert.deepEqual(
          requests.map((line) => [line.method, line.path, line.status]),
          expected,
        );
        for (const line of requests) {
          assert.equal(line.level, "info");
          assert.equal(typeof line.duration_ms, "number");
          assert.ok(line.duration_ms >= 0 && line.duration_ms < 5000);
        }
        // Besides: start and stop (3 notices), and the 410 and 404 as warnings.
        assert.deepEqual(
          lines.filter((line) => line.msg !== "request").map((line) => line.level),
          ["notice", "warn", "warn", "notice", "notice"],
        );
      },
    );
  }

  for (
    const [name, global, args, env] of [
      ["-vvvv", ["-vvvv"], ["--signing-secret", secret], {}],
      ["DEBUG=1 and RELAY_SIGNING_SECRET", [], [], {
        DEBUG: "1",
        RELAY_SIGNING_SECRET: secret,
      }],
    ] as const
  ) {
    await t.step(`${name}: no license key or secret in the output`, async () => {
      await using server = await s.serve([...args], {
        global: [...global],
        env,
      });
      assert.equal(server.startup.signing, true);
      await traffic(server);
      const { code, stdout, stderr } = await server.stop();
      assert.equal(code, 0);
      assert.equal(logLines(stdout.trimEnd().split("\n"), "request").length, expected.length);
      for (const text of [stdout, stderr]) {
        for (const needle of [secret, file.key, pooled.key]) {
          assert.ok(!text.includes(needle), `${needle} not in output`);
        }
        assert.ok(!text.includes(file.certificate.split("\n")[1]), "no license file content");
      }
    });
  }
});
