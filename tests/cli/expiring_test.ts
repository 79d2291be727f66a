/**
 * `relay ls` and `relay stat` show whether each license file is still valid
 * (`file_state`), and `relay ls --expiring DURATION` lists those to renew.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type MintedFile, mintFiles, tempDir } from "../helpers.ts";
import { fileArgs, plainTable, rfc3339, runRelay } from "./support.ts";

/** 2030-01-01T00:00:00Z, when the files are issued and added. */
const T0 = Date.UTC(2030, 0, 1) / 1000;
const DAY = 86_400;

/**
 * Five licenses added at T0: `expired` (file ttl 1 h), `soon` (3 days, pool
 * prod), `later` (30 days), `forever` (no ttl, pool prod), `ownSoon` (file
 * 30 days, the license itself expiring after 2 days).
 */
async function fixture(dir: string) {
  const minted: MintedFile[] = [];
  let publicKey = "";
  for (
    const options of [
      { ttl: 3600 },
      { ttl: 3 * DAY },
      { ttl: 30 * DAY },
      { ttl: null },
      { ttl: 30 * DAY, expiry: new Date((T0 + 2 * DAY) * 1000) },
    ]
  ) {
    const result = await mintFiles(dir, 1, { issued: new Date(T0 * 1000), ...options });
    publicKey = result.publicKey;
    minted.push(...result.files);
  }
  const [expired, soon, later, forever, ownSoon] = minted;
  const add = async (files: MintedFile[], pool: string[]) => {
    const result = await runRelay(["add", ...fileArgs(files), "--public-key", publicKey, ...pool], {
      cwd: dir,
      now: new Date(T0 * 1000),
    });
    assert.equal(result.code, 0, result.stderr);
  };
  // Added in this order, so ls lists them so.
  await add([expired], []);
  await add([soon], ["--pool", "prod"]);
  await add([later], []);
  await add([forever], ["--pool", "prod"]);
  await add([ownSoon], []);
  return { expired, soon, later, forever, ownSoon };
}

/** `relay ls ...args --json` at `at`: each license's id and file_state. */
async function states(dir: string, at: number, args: string[] = []) {
  const result = await runRelay(["ls", "--json", ...args], { cwd: dir, now: new Date(at * 1000) });
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  return (JSON.parse(result.stdout) as Record<string, unknown>[]).map((license) => [
    license.id,
    license.file_state,
  ]);
}

Deno.test("relay ls shows each file's state: valid, expiring within 7 days, or expired", async (t) => {
  await using dir = await tempDir();
  const { expired, soon, later, forever, ownSoon } = await fixture(dir.path);
  const at = T0 + 7200;

  await t.step("--json", async () => {
    assert.deepEqual(await states(dir.path, at), [
      [expired.id, "expired"],
      [soon.id, "expiring"],
      [later.id, "valid"],
      [forever.id, "valid"],
      [ownSoon.id, "expiring"],
    ]);
  });

  await t.step("--plain: the last column, after the reference's and Relay's others", async () => {
    const result = await runRelay(["ls", "--plain"], { cwd: dir.path, now: new Date(at * 1000) });
    assert.equal(result.code, 0, result.stderr);
    const row = (file: MintedFile, pool: string, state: string, fileExpiry: number | null) => [
      file.id,
      pool,
      "0",
      "-",
      "-",
      "-",
      "free",
      "-",
      rfc3339(fileExpiry),
      state,
    ];
    assert.equal(
      result.stdout,
      plainTable([
        row(expired, "-", "expired", T0 + 3600),
        row(soon, "prod", "expiring", T0 + 3 * DAY),
        row(later, "-", "valid", T0 + 30 * DAY),
        row(forever, "prod", "valid", null),
        row(ownSoon, "-", "expiring", T0 + 30 * DAY),
      ]),
    );
  });

  await t.step("stat", async () => {
    const json = await runRelay(["stat", "--license", expired.id, "--json"], {
      cwd: dir.path,
      now: new Date(at * 1000),
    });
    assert.equal(json.code, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).file_state, "expired");
    const plain = await runRelay(["stat", "--license", ownSoon.id, "--plain"], {
      cwd: dir.path,
      now: new Date(at * 1000),
    });
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout.split("\n")[2], / expiring +\|$/);
  });

  await t.step("before anything expires, all valid", async () => {
    assert.deepEqual((await states(dir.path, T0 - 30 * DAY)).map(([, state]) => state), [
      "valid",
      "valid",
      "valid",
      "valid",
      "valid",
    ]);
  });
});

Deno.test("relay ls --expiring DURATION lists the licenses that expire within it, or have expired", async (t) => {
  await using dir = await tempDir();
  const { expired, soon, later, ownSoon } = await fixture(dir.path);
  const at = T0 + 7200;

  await t.step("3d", async () => {
    assert.deepEqual(await states(dir.path, at, ["--expiring", "3d"]), [
      [expired.id, "expired"],
      [soon.id, "expiring"],
      [ownSoon.id, "expiring"],
    ]);
  });

  await t.step("1h: only the expired one", async () => {
    assert.deepEqual(await states(dir.path, at, ["--expiring", "1h"]), [[expired.id, "expired"]]);
  });

  await t.step("40d: every file with a ttl, the window also widening `expiring`", async () => {
    assert.deepEqual(await states(dir.path, at, ["--expiring", "40d"]), [
      [expired.id, "expired"],
      [soon.id, "expiring"],
      [later.id, "expiring"],
      [ownSoon.id, "expiring"],
    ]);
  });

  await t.step("with --pool", async () => {
    assert.deepEqual(await states(dir.path, at, ["--expiring", "40d", "--pool", "prod"]), [
      [soon.id, "expiring"],
    ]);
  });

  await t.step("nothing within it", async () => {
    const now = new Date(T0 * 1000);
    const text = await runRelay(["ls", "--expiring", "30m"], { cwd: dir.path, now });
    assert.deepEqual(text, { code: 0, stdout: "no license expires within 30m\n", stderr: "" });
    const json = await runRelay(["ls", "--expiring", "30m", "--json"], { cwd: dir.path, now });
    assert.deepEqual(json, { code: 0, stdout: "[]\n", stderr: "" });
  });

  await t.step("a bad duration is a usage error", async () => {
    const result = await runRelay(["ls", "--expiring", "soon"], { cwd: dir.path });
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.ok(
      result.stderr.startsWith("error: ") && result.stderr.includes('"soon"'),
      result.stderr,
    );
  });
});
