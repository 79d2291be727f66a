import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { importPublicKey } from "../../lib/license_file.ts";
import {
  addLicenses,
  findLicense,
  listLicenses,
  removeLicenses,
  verifyLicenses,
} from "../../lib/licenses.ts";
import { openStore } from "../../lib/storage/open.ts";
import type { Store } from "../../lib/storage/store.ts";
import { unixSeconds } from "../../lib/time.ts";
import { auditTrail, KEYGEN, mintFiles, query, tempDir } from "../helpers.ts";

const NOW = new Date("2026-11-25T12:00:00Z");

async function withStore(fn: (store: Store, path: string, dir: string) => Promise<void>) {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = await openStore(path, { now: unixSeconds(NOW) });
  try {
    await fn(store, path, dir.path);
  } finally {
    await store.close();
  }
}

async function verifiedMinted(dir: string, count: number) {
  const { publicKey, files } = await mintFiles(dir, count, { issued: NOW });
  return await verifyLicenses(
    files.map((file) => ({
      source: file.path,
      certificate: new TextEncoder().encode(file.certificate),
      key: file.key,
    })),
    { publicKey: await importPublicKey(publicKey), now: unixSeconds(NOW) },
  );
}

Deno.test("verifyLicenses() reads the real Keygen files inside their validity window", async () => {
  const publicKey = await importPublicKey(KEYGEN.publicKey);
  const verified = await verifyLicenses(
    KEYGEN.licenses.map((license) => ({
      source: license.path,
      certificate: Deno.readFileSync(license.path),
      key: license.key,
    })),
    { publicKey, now: unixSeconds(KEYGEN.validAt) },
  );
  assert.deepEqual(verified.map((v) => v.license.id), KEYGEN.licenses.map((l) => l.id));
  assert.deepEqual(verified.map((v) => v.license.key), KEYGEN.licenses.map((l) => l.key));
});

Deno.test("verifyLicenses() stops at the first bad file and names it", async () => {
  await using dir = await tempDir();
  const { publicKey, files } = await mintFiles(dir.path, 2);
  let progress = 0;
  await assert.rejects(
    verifyLicenses(
      files.map((file, i) => ({
        source: file.path,
        certificate: new TextEncoder().encode(file.certificate),
        key: i === 1 ? "WRONG-KEY" : file.key,
      })),
      {
        publicKey: await importPublicKey(publicKey),
        now: unixSeconds(new Date()),
        onProgress: (done) => (progress = done),
      },
    ),
    (error: Error & { code?: string }) =>
      error.code === "license_key_wrong" && error.message.includes(files[1].path),
  );
  assert.equal(progress, 1);
});

Deno.test("addLicenses() stores files, creates the pool and audits in one transaction", async () => {
  await withStore(async (store, path, dir) => {
    const verified = await verifiedMinted(dir, 2);
    const added = await addLicenses(store, verified, { pool: "prod", now: unixSeconds(NOW) });
    assert.deepEqual(added.map((a) => a.guid), verified.map((v) => v.license.id));
    assert.deepEqual(added.map((a) => a.pool), ["prod", "prod"]);
    const rows = query<{ guid: string; file: Uint8Array; key: string; created_at: number }>(
      path,
      "SELECT guid, file, key, created_at FROM licenses ORDER BY id",
    );
    assert.deepEqual(rows.map((r) => r.guid), verified.map((v) => v.license.id));
    assert.deepEqual(rows.map((r) => new Uint8Array(r.file)), verified.map((v) => v.certificate));
    assert.deepEqual(rows.map((r) => r.created_at), [NOW.getTime() / 1000, NOW.getTime() / 1000]);
    assert.deepEqual(auditTrail(path), [
      ["pool.added", "pool", 1, null],
      ["license.added", "license", 1, 1],
      ["license.added", "license", 2, 1],
    ]);
  });
});

Deno.test("addLicenses() adds nothing when one license is already stored", async () => {
  await withStore(async (store, path, dir) => {
    const verified = await verifiedMinted(dir, 2);
    await addLicenses(store, [verified[1]], { now: unixSeconds(NOW) });
    await assert.rejects(
      () => addLicenses(store, verified, { pool: "new", now: unixSeconds(NOW) }),
      (error: Error & { code?: string }) =>
        error.code === "license_exists" &&
        error.message.includes("license with the provided key already exists"),
    );
    assert.equal(query(path, "SELECT count(*) AS n FROM licenses")[0].n, 1);
    assert.equal(query(path, "SELECT count(*) AS n FROM pools")[0].n, 0);
    assert.deepEqual(auditTrail(path), [["license.added", "license", 1, null]]);
  });
});

Deno.test("removeLicenses() needs force for a leased license and audits the release", async () => {
  await withStore(async (store, path, dir) => {
    const verified = await verifiedMinted(dir, 2);
    const [a, b] = await addLicenses(store, verified, { now: unixSeconds(NOW) });
    const db = new DatabaseSync(path);
    db.exec("INSERT INTO nodes (fingerprint, last_heartbeat_at) VALUES ('node-1', 1)");
    db.prepare("UPDATE licenses SET node_id = 1 WHERE id = ?").run(b.id);
    db.close();

    await assert.rejects(
      () => removeLicenses(store, [a.guid, b.guid], { now: unixSeconds(NOW) }),
      (error: Error & { code?: string }) =>
        error.code === "license_leased" && error.message.includes('"node-1"'),
    );
    assert.equal((await listLicenses(store)).length, 2, "nothing is removed");
    await assert.rejects(
      () => removeLicenses(store, [a.guid, "missing"], { now: unixSeconds(NOW) }),
      (error: Error & { code?: string }) =>
        error.code === "license_not_found" && error.message.includes('"missing"'),
    );
    assert.equal((await listLicenses(store)).length, 2, "nothing is removed");

    const removed = await removeLicenses(store, [a.guid, b.guid, a.guid], {
      force: true,
      now: unixSeconds(NOW),
    });
    assert.deepEqual(removed.map((r) => r.guid), [a.guid, b.guid]);
    assert.deepEqual(await listLicenses(store), []);
    assert.deepEqual(auditTrail(path).slice(2), [
      ["license.removed", "license", a.id, null],
      ["license.released", "license", b.id, null],
      ["license.removed", "license", b.id, null],
    ]);
  });
});

Deno.test("listLicenses() filters by pool and refuses an unknown one", async () => {
  await withStore(async (store, _path, dir) => {
    const verified = await verifiedMinted(dir, 3);
    await addLicenses(store, verified.slice(0, 2), { pool: "prod", now: unixSeconds(NOW) });
    await addLicenses(store, verified.slice(2), { now: unixSeconds(NOW) });
    assert.equal((await listLicenses(store)).length, 3);
    assert.deepEqual(
      (await listLicenses(store, { pool: "prod" })).map((l) => l.guid),
      verified.slice(0, 2).map((v) => v.license.id),
    );
    await assert.rejects(
      () => listLicenses(store, { pool: "nope" }),
      (error: Error & { code?: string }) =>
        error.code === "pool_not_found" && error.message === "pool not found",
    );
    assert.equal((await findLicense(store, verified[2].license.id)).poolName, null);
    await assert.rejects(
      () => findLicense(store, "nope"),
      (error: Error & { code?: string }) => error.code === "license_not_found",
    );
  });
});
