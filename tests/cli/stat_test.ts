/**
 * `relay stat`: one license, with the node that leases it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { openStore } from "../../lib/storage/open.ts";
import { mintFiles, tempDir } from "../helpers.ts";
import {
  dbPath,
  fileArgs,
  lease,
  plainTable,
  rfc3339,
  runRelay,
  wholeSecondsAgo,
} from "./support.ts";

const TTL = 3 * 86_400;

Deno.test("relay stat shows one license as a plain row or JSON", async (t) => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const issued = wholeSecondsAgo(600);
  const issuedAt = issued.getTime() / 1000;
  const { publicKey, files } = await mintFiles(dir.path, 2, { issued, ttl: TTL });
  const [free, leased] = files;
  const added = await runRelay(
    ["add", ...fileArgs(files), "--public-key", publicKey, "--pool", "prod"],
    { cwd: dir.path },
  );
  assert.equal(added.code, 0, added.stderr);
  const claimedAt = issuedAt + 5;
  const nodeId = lease(db, leased.id, "node-stat-9", {
    heartbeatAt: claimedAt + 10,
    claimedAt,
    claims: 2,
  });

  await t.step("--plain: a one-row table", async () => {
    const result = await runRelay(["stat", "--license", free.id, "--plain"], { cwd: dir.path });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.equal(
      result.stdout,
      plainTable([[
        free.id,
        "prod",
        "0",
        "-",
        "-",
        "-",
        "free",
        "-",
        rfc3339(issuedAt + TTL),
        "expiring",
      ]]),
    );
    assert.equal(result.stdout.split("\n").length, 4);
    assert.ok(result.stdout.split("\n")[2].startsWith(`| ${free.id} |`));
  });

  await t.step("--plain on a leased license", async () => {
    const result = await runRelay(["stat", "--license", leased.id, "--plain"], { cwd: dir.path });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout,
      plainTable([[
        leased.id,
        "prod",
        "2",
        String(nodeId),
        rfc3339(claimedAt),
        "-",
        "leased",
        "node-stat-9",
        rfc3339(issuedAt + TTL),
        "expiring",
      ]]),
    );
  });

  await t.step("--json on a free license", async () => {
    const result = await runRelay(["stat", "--license", free.id, "--json"], { cwd: dir.path });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.ok(result.stdout.endsWith("}\n"), result.stdout);
    const license = JSON.parse(result.stdout);
    assert.equal(license.id, free.id);
    assert.equal(license.pool, "prod");
    assert.equal(license.status, "free");
    assert.equal(license.claims, 0);
    assert.equal(license.node_id, null);
    assert.equal(license.node_fingerprint, null);
    assert.equal(license.file_issued_at, rfc3339(issuedAt));
    assert.equal(license.file_expires_at, rfc3339(issuedAt + TTL));
    // 3 days left: within the 7 days in which a file counts as expiring.
    assert.equal(license.file_state, "expiring");
  });

  await t.step("--json on a leased license", async () => {
    const result = await runRelay(["stat", "--license", leased.id, "--json"], { cwd: dir.path });
    assert.equal(result.code, 0, result.stderr);
    const license = JSON.parse(result.stdout);
    assert.equal(license.id, leased.id);
    assert.equal(license.status, "leased");
    assert.equal(license.claims, 2);
    assert.equal(license.node_id, nodeId);
    assert.equal(license.node_fingerprint, "node-stat-9");
    assert.equal(license.node_last_heartbeat_at, rfc3339(claimedAt + 10));
    assert.equal(license.last_claimed_at, rfc3339(claimedAt));
    assert.equal(license.last_released_at, null);
    assert.equal(license.file_expires_at, rfc3339(issuedAt + TTL));
  });
});

Deno.test("relay stat refuses an unknown id and a missing --license", async (t) => {
  await using dir = await tempDir();

  await t.step("an unknown id", async () => {
    await (await openStore(dbPath(dir.path), { now: 0 })).close();
    const result = await runRelay(["stat", "--license", "no-such-license", "--json"], {
      cwd: dir.path,
    });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.ok(result.stderr.startsWith("error: "), result.stderr);
    assert.ok(result.stderr.includes(`"no-such-license"`), result.stderr);
  });

  await t.step("no --license", async () => {
    const result = await runRelay(["stat"], { cwd: dir.path });
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.ok(result.stderr.startsWith("error:"), result.stderr);
    assert.ok(result.stderr.includes("--license"), result.stderr);
  });
});
