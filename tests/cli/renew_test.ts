/**
 * Renewal in place: `relay add` of a newer file (same license, same key, same
 * pool, later `meta.issued`) replaces the stored file while the license keeps
 * its row, pool and lease; the holder sees the new `Relay-License-Expires` on
 * its next heartbeat and the new file through `GET`. Older or identical
 * files, another pool or another key are refused as before.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { auditTrail, dbPath, mintFiles, query, runInProcess, tempDir } from "../helpers.ts";
import { call, type Target } from "../server/http_support.ts";
import { serveInProcess } from "../server/in_process.ts";

const DAY = 86_400;

/** One license minted twice (and once more with another key), `days` apart. */
async function versions(dir: string, now: number) {
  const id = crypto.randomUUID();
  const key = "RENEW-1234-5678-ABCD";
  const at = (days: number) => new Date((now + days * DAY) * 1000);
  // Each in its own folder: a minted file is named by the license id.
  const into = async (name: string) => {
    await Deno.mkdir(`${dir}/${name}`);
    return `${dir}/${name}`;
  };
  const old = await mintFiles(await into("old"), 1, { id, key, issued: at(-10) });
  const renewed = await mintFiles(await into("new"), 1, { id, key, issued: at(-1) });
  const otherKey = await mintFiles(await into("other"), 1, {
    id,
    key: "OTHER-KEY",
    issued: at(-1),
  });
  return {
    id,
    key,
    publicKey: old.publicKey,
    old: old.files[0],
    renewed: renewed.files[0],
    otherKey: otherKey.files[0],
  };
}

function addArgs(publicKey: string, path: string, key: string, db: string, pool?: string) {
  return [
    "add",
    "--public-key",
    publicKey,
    "--file",
    path,
    "--key",
    key,
    "--database",
    db,
    ...(pool === undefined ? [] : ["--pool", pool]),
  ];
}

Deno.test("relay add of a newer file renews the license in place, lease and all", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const t0 = Math.floor(Date.now() / 1000);
  const v = await versions(dir.path, t0);
  const add = (path: string, key = v.key, pool = "prod") =>
    runInProcess(addArgs(v.publicKey, path, key, db, pool), { now: new Date(t0 * 1000) });
  assert.equal((await add(v.old.path)).code, 0);

  await using server = await serveInProcess([], { database: db });
  server.clock.seconds = t0;
  const target: Target = { url: server.url, clock: server.clock, client: server.client };
  const pool = { "Relay-Pool": "prod" };
  const created = await call(target, "PUT", "/v1/nodes/node-1", pool);
  assert.equal(created.status, 201);
  const oldExpiry = Number(created.headers.get("Relay-License-Expires"));
  assert.equal(oldExpiry, t0 - 10 * DAY + 30 * DAY);
  const before = query(db, "SELECT id, pool_id, node_id, claims, created_at FROM licenses");

  const renewed = await add(v.renewed.path);
  assert.deepEqual(renewed, {
    code: 0,
    stdout: `license renewed successfully: ${v.id}\n`,
    stderr: "",
  });
  assert.deepEqual(
    query(db, "SELECT id, pool_id, node_id, claims, created_at FROM licenses"),
    before,
    "same row, pool and lease",
  );
  assert.deepEqual(
    query(db, "SELECT file, file_issued_at, file_expires_at FROM licenses"),
    [{
      file: new TextEncoder().encode(v.renewed.certificate),
      file_issued_at: t0 - DAY,
      file_expires_at: t0 - DAY + 30 * DAY,
    }],
  );
  assert.deepEqual(auditTrail(db).at(-1), [
    "license.renewed",
    "license",
    before[0].id,
    before[0].pool_id,
  ]);

  // The holder's heartbeat: still its lease (202), with the new file's expiry.
  const heartbeat = await call(target, "PUT", "/v1/nodes/node-1", pool);
  assert.equal(heartbeat.status, 202);
  assert.equal(heartbeat.headers.get("Relay-License-Expires"), String(t0 - DAY + 30 * DAY));
  const got = await call(target, "GET", "/v1/nodes/node-1", pool);
  assert.equal(
    new TextDecoder().decode(Uint8Array.fromBase64(JSON.parse(got.body).license_file)),
    v.renewed.certificate,
  );
});

Deno.test("relay add refuses an older or identical file, another pool or another key, as before", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const t0 = Math.floor(Date.now() / 1000);
  const v = await versions(dir.path, t0);
  const add = (path: string, key = v.key, pool: string | undefined = "prod") =>
    runInProcess(addArgs(v.publicKey, path, key, db, pool), { now: new Date(t0 * 1000) });
  assert.equal((await add(v.renewed.path)).code, 0);
  const stored = () => query(db, "SELECT file, file_issued_at FROM licenses");
  const before = stored();
  const exists = `error: license with the provided key already exists (license "${v.id}", file `;
  for (
    const [label, path, key, pool] of [
      ["older", v.old.path, v.key, "prod"],
      ["identical", v.renewed.path, v.key, "prod"],
      ["another pool", v.renewed.path, v.key, "dev"],
      ["no pool", v.renewed.path, v.key, undefined],
    ] as const
  ) {
    const result = await add(path, key, pool);
    assert.equal(result.code, 1, label);
    assert.ok(result.stderr.startsWith(exists), `${label}: ${result.stderr}`);
    assert.deepEqual(stored(), before, label);
  }
  const otherKey = await add(v.otherKey.path, "OTHER-KEY");
  assert.equal(otherKey.code, 1);
  assert.ok(otherKey.stderr.startsWith(exists), otherKey.stderr);
  assert.deepEqual(stored(), before);
  assert.equal(
    auditTrail(db).filter(([event]) => event === "license.renewed").length,
    0,
  );
});

Deno.test("a license added by Keygen Relay (no recorded issue date) is not renewed", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const t0 = Math.floor(Date.now() / 1000);
  const v = await versions(dir.path, t0);
  const add = (path: string) =>
    runInProcess(addArgs(v.publicKey, path, v.key, db), { now: new Date(t0 * 1000) });
  assert.equal((await add(v.old.path)).code, 0);
  const sqlite = new DatabaseSync(db);
  sqlite.exec("UPDATE licenses SET file_issued_at = NULL, file_expires_at = NULL");
  sqlite.close();
  const result = await add(v.renewed.path);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^error: license with the provided key already exists/);
});
