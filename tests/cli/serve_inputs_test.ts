/**
 * `relay serve` settings at the edges of what it accepts: every duration is
 * bounded (just inside starts, just outside exits 2 with one line), a long
 * ttl still gives integer times in responses, and an empty signing secret is
 * refused wherever it comes from.
 *
 * @module
 */

import assert from "node:assert/strict";
import { mintFiles, tempDir } from "../helpers.ts";
import { dbPath, exists, fileArgs, runRelay } from "./support.ts";
import { serveInProcess } from "./serve_in_process.ts";

const LOCAL = ["--bind", "127.0.0.1", "--port", "0"];

/** Whole seconds of now, as a Date: the fixed clock of the in-process servers. */
function wholeSecondNow(): Date {
  return new Date(Math.floor(Date.now() / 1000) * 1000);
}

/** `relay serve` refused the setting: exit 2, exactly `stderr`, no server, no database. */
async function assertRefused(
  dir: string,
  args: string[],
  env: Record<string, string>,
  stderr: string,
): Promise<void> {
  const result = await runRelay(["serve", ...LOCAL, ...args], { cwd: dir, env, timeoutMs: 20_000 });
  assert.equal(result.stderr, stderr);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "");
  assert.equal(await exists(dbPath(dir)), false, "no database created");
}

Deno.test("relay serve refuses durations just outside their bounds with exit 2", async (t) => {
  await using dir = await tempDir();
  const huge = "99999999999999999999h";
  // So many digits that the number is Infinity.
  const infinite = `${"9".repeat(400)}s`;
  const cases: [string, string[], Record<string, string>, string][] = [
    ["--ttl 29s", ["--ttl", "29s"], {}, "time-to-live value must be at least 30s"],
    ["--ttl 29999ms", ["--ttl", "29999ms"], {}, "time-to-live value must be at least 30s"],
    [
      "--ttl 365d1s",
      ["--ttl", "365d1s"],
      {},
      'time-to-live value must be at most 365d, not "365d1s"',
    ],
    [
      `--ttl ${huge}`,
      ["--ttl", huge],
      {},
      `time-to-live value must be at most 365d, not "${huge}"`,
    ],
    [
      "RELAY_LEASE_TTL=8761h",
      [],
      { RELAY_LEASE_TTL: "8761h" },
      'time-to-live value must be at most 365d, not "8761h"',
    ],
    [
      "--ttl of 400 digits",
      ["--ttl", infinite],
      {},
      `time-to-live value must be at most 365d, not "${infinite}"`,
    ],
    [
      "--cull-interval 99ms",
      ["--cull-interval", "99ms"],
      {},
      "Cull interval must be at least 100ms",
    ],
    [
      "--cull-interval 24h1ms",
      ["--cull-interval", "24h1ms"],
      {},
      'Cull interval must be at most 24h, not "24h1ms"',
    ],
    [
      `RELAY_CULL_INTERVAL=${huge}`,
      [],
      { RELAY_CULL_INTERVAL: huge },
      `Cull interval must be at most 24h, not "${huge}"`,
    ],
    [
      "--audit-retention 59s",
      ["--audit-retention", "59s"],
      {},
      "Audit retention must be at least 1m",
    ],
    [
      "--audit-retention 36501d",
      ["--audit-retention", "36501d"],
      {},
      'Audit retention must be at most 36500d, not "36501d"',
    ],
    [
      `RELAY_AUDIT_RETENTION=${huge}`,
      [],
      { RELAY_AUDIT_RETENTION: huge },
      `Audit retention must be at most 36500d, not "${huge}"`,
    ],
  ];
  for (const [name, args, env, message] of cases) {
    await t.step(name, () => assertRefused(dir.path, args, env, `error: ${message}\n`));
  }
});

Deno.test("relay serve starts with durations at their bounds", async (t) => {
  await using dir = await tempDir();
  const cases: [string, string[], Record<string, unknown>][] = [
    ["--ttl 30s", ["--ttl", "30s"], { ttl: "30s" }],
    ["--ttl 365d", ["--ttl", "365d"], { ttl: "31536000s" }],
    ["--ttl 8760h (365d)", ["--ttl", "8760h"], { ttl: "31536000s" }],
    ["--cull-interval 100ms", ["--cull-interval", "100ms"], {}],
    ["--cull-interval 24h", ["--cull-interval", "24h"], {}],
    ["--audit-retention 1m", ["--audit-retention", "1m"], { audit_retention: "60s" }],
    [
      "--audit-retention 36500d",
      ["--audit-retention", "36500d"],
      { audit_retention: "3153600000s" },
    ],
  ];
  for (const [name, args, startup] of cases) {
    await t.step(name, async () => {
      await using server = await serveInProcess(args, { cwd: dir.path, now: wholeSecondNow() });
      for (const [key, value] of Object.entries(startup)) {
        assert.equal(server.startup[key], value, key);
      }
      const { code, stderr } = await server.stop();
      assert.equal(stderr, "");
      assert.equal(code, 0);
    });
  }
});

Deno.test("relay serve with a long or fractional ttl answers integer expires_at", async (t) => {
  await using dir = await tempDir();
  const now = wholeSecondNow();
  const nowSeconds = now.getTime() / 1000;
  const { publicKey, files } = await mintFiles(dir.path, 1);
  const added = await runRelay(["add", ...fileArgs(files), "--public-key", publicKey], {
    cwd: dir.path,
    now,
  });
  assert.equal(added.code, 0, added.stderr);

  const cases: [string, string, number][] = [
    ["the longest ttl, 365d", "365d", 31_536_000],
    ["a fraction of a second is dropped", "90.5s", 90],
    ["fractional hours", "1.0000001h", 3600],
  ];
  for (const [name, ttl, seconds] of cases) {
    await t.step(name, async () => {
      await using server = await serveInProcess(["--ttl", ttl], { cwd: dir.path, now });
      const claim = () => fetch(`${server.url}/v1/nodes/node-1`, { method: "PUT" });
      const created = await claim();
      const body = await created.text();
      assert.equal(created.status, 201, body);
      // As the client reads it: plain digits, no exponent, no fraction.
      assert.match(
        body,
        new RegExp(`"expires_at":${nowSeconds + seconds},"expires_in":${seconds}}`),
      );
      const extended = await claim();
      assert.equal(extended.status, 202);
      assert.equal(
        await extended.text(),
        `{"expires_at":${nowSeconds + seconds},"expires_in":${seconds}}\n`,
      );
      const released = await fetch(`${server.url}/v1/nodes/node-1`, { method: "DELETE" });
      await released.body?.cancel();
      assert.equal(released.status, 204);
      assert.equal((await server.stop()).code, 0);
    });
  }
});

Deno.test("relay serve refuses an empty signing secret from the flag, env var or file", async (t) => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/newline.txt`, "\n");
  await Deno.writeTextFile(`${dir.path}/blank.txt`, "  \t\n\n");
  const cases: [string, string[], Record<string, string>, string][] = [
    [
      "--signing-secret ''",
      ["--signing-secret", ""],
      {},
      "Signing secret from --signing-secret is empty",
    ],
    [
      "--signing-secret '  '",
      ["--signing-secret", "  "],
      {},
      "Signing secret from --signing-secret is empty",
    ],
    [
      "RELAY_SIGNING_SECRET=''",
      [],
      { RELAY_SIGNING_SECRET: "" },
      "Signing secret from RELAY_SIGNING_SECRET is empty",
    ],
    [
      "RELAY_SIGNING_SECRET=' '",
      [],
      { RELAY_SIGNING_SECRET: " \t" },
      "Signing secret from RELAY_SIGNING_SECRET is empty",
    ],
    [
      "RELAY_SIGNING_SECRET='' beside a secret file",
      ["--signing-secret-file", "newline.txt"],
      { RELAY_SIGNING_SECRET: "" },
      "Signing secret from RELAY_SIGNING_SECRET is empty",
    ],
    [
      "--signing-secret-file ''",
      ["--signing-secret-file", ""],
      {},
      "Signing secret file path from --signing-secret-file is empty",
    ],
    [
      "RELAY_SIGNING_SECRET_FILE=''",
      [],
      { RELAY_SIGNING_SECRET_FILE: "" },
      "Signing secret file path from RELAY_SIGNING_SECRET_FILE is empty",
    ],
    [
      "a file holding a newline",
      ["--signing-secret-file", "newline.txt"],
      {},
      'Signing secret file "newline.txt" holds no secret',
    ],
    [
      "a file holding blanks",
      [],
      { RELAY_SIGNING_SECRET_FILE: "blank.txt" },
      'Signing secret file "blank.txt" holds no secret',
    ],
  ];
  for (const [name, args, env, message] of cases) {
    await t.step(name, () => assertRefused(dir.path, args, env, `error: ${message}\n`));
  }

  await t.step("the flag wins over an empty env var and signs", async () => {
    await using server = await serveInProcess(["--signing-secret", "s3cret"], {
      cwd: dir.path,
      now: wholeSecondNow(),
      env: { RELAY_SIGNING_SECRET: "" },
    });
    assert.equal(server.startup.signing, true);
    const health = await fetch(`${server.url}/v1/health`);
    await health.body?.cancel();
    assert.match(
      health.headers.get("Relay-Signature") ?? "",
      /^t=\d+,v1=[0-9a-f]{64},v2=[0-9a-f]{64}$/,
    );
    assert.equal((await server.stop()).code, 0);
  });
});
