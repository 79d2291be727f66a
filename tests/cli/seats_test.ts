/**
 * Multi-seat license files (`relay add --seats N`): the limits of the file,
 * how `ls`, `stat` and `leases` show it, renewal and backup. Leasing seats
 * through a real server, `del` and `release --license` of a multi-seat
 * license are in seats_leases_test.ts, on both engines.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { mintLicenseFile } from "../../scripts/mint.ts";
import {
  auditTrail,
  dbPath,
  FREE_COUNT_MISMATCHES,
  type MintedFile,
  mintFiles,
  query,
  sharedKeyPair,
  tempDir,
} from "../helpers.ts";
import { call, claim, type Target } from "../server/http_support.ts";
import { serveInProcess } from "../server/in_process.ts";
import { fileArgs, rfc3339, runRelay } from "./support.ts";

const TTL = 60;

/** Mints one license file with these limits into `dir`. */
async function mintLimited(
  dir: string,
  limits: { maxMachines?: number | null; maxUsers?: number | null },
): Promise<{ publicKey: string; file: MintedFile }> {
  const { publicKey, files } = await mintFiles(dir, 1, limits);
  return { publicKey, file: files[0] };
}

/** `relay add` of `file` with `--seats`, into `db`. */
function addSeats(
  dir: string,
  db: string,
  publicKey: string,
  file: MintedFile,
  seats: string,
  extra: string[] = [],
) {
  return runRelay(
    [
      "add",
      ...fileArgs([file]),
      "--public-key",
      publicKey,
      "--seats",
      seats,
      "--database",
      db,
      ...extra,
    ],
    { cwd: dir },
  );
}

function rows(db: string) {
  return query<{ guid: string; seat_of: number | null; node_id: number | null }>(
    db,
    "SELECT guid, seat_of, node_id FROM licenses ORDER BY id",
  );
}

Deno.test("relay add --seats stores N seats within the file's maxMachines and maxUsers, and refuses more", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const { publicKey, file } = await mintLimited(dir.path, { maxMachines: 3, maxUsers: 5 });

  const over = await addSeats(dir.path, db, publicKey, file, "4");
  assert.equal(over.code, 1);
  assert.equal(over.stdout, "");
  assert.match(
    over.stderr,
    /^error: Cannot add ".*": --seats 4 is more than the license allows: at most 3 machines\n$/,
  );

  const usage = await addSeats(dir.path, db, publicKey, file, "0");
  assert.equal(usage.code, 2);
  assert.equal(usage.stderr, 'error: --seats must be a whole number from 1, not "0"\n');
  assert.equal((await addSeats(dir.path, db, publicKey, file, "2.5")).code, 2);

  const added = await addSeats(dir.path, db, publicKey, file, "3");
  assert.equal(added.code, 0, added.stderr);
  assert.equal(added.stdout, `license added successfully: ${file.id} (3 seats)\n`);
  const main = query<{ id: number }>(db, "SELECT id FROM licenses WHERE guid = ?", file.id)[0].id;
  assert.deepEqual(rows(db), [
    { guid: file.id, seat_of: null, node_id: null },
    { guid: `${file.id}#seat-2`, seat_of: main, node_id: null },
    { guid: `${file.id}#seat-3`, seat_of: main, node_id: null },
  ]);
  assert.deepEqual(
    query(db, "SELECT max_machines, max_users FROM licenses WHERE id = ?", main),
    [{ max_machines: 3, max_users: 5 }],
  );
  // One license.added: the seats are not licenses of their own.
  assert.deepEqual(auditTrail(db), [["license.added", "license", main, null]]);
  assert.deepEqual(query(db, FREE_COUNT_MISMATCHES), []);

  // The same file again is refused as today, with or without --seats.
  const again = await addSeats(dir.path, db, publicKey, file, "3");
  assert.equal(again.code, 1);
  assert.match(again.stderr, /license with the provided key already exists/);

  // The lower of the two limits counts: a seat may go to a node or a user.
  const users = await mintLimited(dir.path, { maxMachines: 10, maxUsers: 2 });
  const tooMany = await addSeats(dir.path, db, users.publicKey, users.file, "3");
  assert.equal(tooMany.code, 1);
  assert.match(tooMany.stderr, /--seats 3 is more than the license allows: at most 2 users\n$/);

  // A file that states no limit cannot be shared; --seats 1 is an ordinary add.
  const none = await mintLimited(dir.path, {});
  const unlimited = await addSeats(dir.path, db, none.publicKey, none.file, "2");
  assert.equal(unlimited.code, 1);
  assert.match(
    unlimited.stderr,
    /this one states neither \(maxMachines and maxUsers are null\)\n$/,
  );
  const one = await addSeats(dir.path, db, none.publicKey, none.file, "1");
  assert.equal(one.code, 0, one.stderr);
  assert.equal(one.stdout, `license added successfully: ${none.file.id}\n`);
  assert.equal(rows(db).length, 4);
  // Another client that deletes the license row (Keygen Relay's `del`, with
  // foreign keys on) takes its seat rows along, and the free counters follow.
  const raw = new DatabaseSync(db);
  try {
    raw.exec("PRAGMA foreign_keys = ON");
    raw.prepare("DELETE FROM licenses WHERE id = ?").run(main);
  } finally {
    raw.close();
  }
  assert.deepEqual(rows(db), [{ guid: none.file.id, seat_of: null, node_id: null }]);
  assert.deepEqual(query(db, FREE_COUNT_MISMATCHES), []);
});

Deno.test("ls, stat and leases show a multi-seat license once, with seats used/total", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const { publicKey, file } = await mintLimited(dir.path, { maxMachines: 3 });
  assert.equal((await addSeats(dir.path, db, publicKey, file, "3")).code, 0);
  const plain = await mintFiles(dir.path, 1);
  const single = plain.files[0];
  const add = await runRelay(
    ["add", ...fileArgs([single]), "--public-key", plain.publicKey, "--database", db],
    { cwd: dir.path },
  );
  assert.equal(add.code, 0, add.stderr);

  await using server = await serveInProcess(["--ttl", `${TTL}s`, "--strategy", "fifo"], {
    database: db,
  });
  const target: Target = { url: server.url, clock: server.clock, client: server.client };
  const now = server.clock.now();
  // fifo: the multi-seat license's rows come first.
  assert.equal((await claim(target, "node-a")).status, 201);
  assert.equal(
    (await call(target, "PUT", "/v1/users/bob@example.com")).status,
    201,
  );

  const ls = await runRelay(["ls", "--plain", "--database", db], { cwd: dir.path, now });
  assert.equal(ls.code, 0, ls.stderr);
  const lines = ls.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 4, ls.stdout);
  assert.match(lines[0], /\| file_state \| seats \|$/);
  const cells = (line: string) => line.split("|").slice(1, -1).map((cell) => cell.trim());
  const multi = cells(lines[2]);
  assert.deepEqual(
    [multi[0], multi[2], multi[3], multi[6], multi[7], multi[10]],
    [file.id, "2", "-", "free", "-", "2/3"],
  );
  const other = cells(lines[3]);
  assert.deepEqual([other[0], other[6], other[10]], [single.id, "free", "0/1"]);

  const json = await runRelay(["ls", "--json", "--database", db], { cwd: dir.path, now });
  const listed = JSON.parse(json.stdout);
  assert.deepEqual(listed.map((l: Record<string, unknown>) => [l.id, l.seats, l.seats_used]), [
    [file.id, 3, 2],
    [single.id, 1, 0],
  ]);

  const stat = await runRelay(["stat", "--license", file.id, "--json", "--database", db], {
    cwd: dir.path,
    now,
  });
  const info = JSON.parse(stat.stdout);
  assert.equal(info.seats, 3);
  assert.equal(info.seats_used, 2);
  assert.equal(info.claims, 2);
  assert.equal(info.node_fingerprint, null);
  const table1 = await runRelay(["stat", "--license", file.id, "--database", db], {
    cwd: dir.path,
    now,
  });
  assert.match(table1.stdout, /\| file_state \| seats \|\n/);
  assert.match(table1.stdout, /\| valid +\| 2\/3 +\|\n$/);
  // A seat row is no license of its own.
  const seat = await runRelay(["stat", "--license", `${file.id}#seat-2`, "--database", db], {
    cwd: dir.path,
    now,
  });
  assert.equal(seat.code, 1);

  const leases = await runRelay(["leases", "--json", "--database", db], { cwd: dir.path, now });
  const report = JSON.parse(leases.stdout);
  assert.deepEqual(
    report.leases.map((
      l: Record<string, unknown>,
    ) => [l.node ?? l.user, l.license, l.seats_used, l.seats]),
    [["node-a", file.id, 2, 3], ["bob@example.com", file.id, 2, 3]],
  );
  const table = await runRelay(["leases", "--plain", "--database", db], { cwd: dir.path, now });
  assert.match(table.stdout, /\| status +\| seats \|\n/);
  assert.ok(!table.stdout.includes("#seat-"), table.stdout);
  assert.match(table.stdout, new RegExp(`\\| ${file.id} .*\\| 2/3 +\\|\\n`));
});

Deno.test("renewing a multi-seat license updates its seats' dates and keeps their leases", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const issued = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000);
  const keyPair = await sharedKeyPair();
  const old = await mintLicenseFile(keyPair, { issued, ttl: 7200, maxMachines: 2 });
  const oldPath = `${dir.path}/old.lic`;
  await Deno.writeTextFile(oldPath, old.certificate);
  const oldFile = { ...old, path: oldPath };
  const publicKey = keyPair.publicKeyText;
  assert.equal((await addSeats(dir.path, db, publicKey, oldFile, "2")).code, 0);
  {
    await using server = await serveInProcess(["--ttl", `${TTL}s`], { database: db });
    const target: Target = { url: server.url, clock: server.clock, client: server.client };
    assert.equal((await claim(target, "node-a")).status, 201);
    assert.equal((await claim(target, "node-b")).status, 201);
  }
  const renewedAt = new Date(issued.getTime() + 60_000);
  const renewed = await mintLicenseFile(keyPair, {
    id: old.id,
    key: old.key,
    issued: renewedAt,
    ttl: 86_400,
    maxMachines: 2,
  });
  const newPath = `${dir.path}/new.lic`;
  await Deno.writeTextFile(newPath, renewed.certificate);
  const newFile = { ...renewed, path: newPath };

  // A renewal whose file allows fewer holders than the license has seats is refused.
  const fewer = await mintLicenseFile(keyPair, {
    id: old.id,
    key: old.key,
    issued: renewedAt,
    ttl: 86_400,
    maxMachines: 1,
  });
  const fewerPath = `${dir.path}/fewer.lic`;
  await Deno.writeTextFile(fewerPath, fewer.certificate);
  const refused = await runRelay(
    [
      "add",
      ...fileArgs([{ ...fewer, path: fewerPath }]),
      "--public-key",
      publicKey,
      "--database",
      db,
    ],
    { cwd: dir.path },
  );
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /--seats 2 is more than the license allows: at most 1 machines\n$/);

  // Changing the seats is refused: delete and add again.
  const change = await addSeats(dir.path, db, publicKey, newFile, "1");
  assert.equal(change.code, 1);
  assert.match(change.stderr, /has 2 seat\(s\); a renewal cannot change them to 1: delete/);

  const add = await runRelay(
    ["add", ...fileArgs([newFile]), "--public-key", publicKey, "--database", db],
    { cwd: dir.path },
  );
  assert.equal(add.code, 0, add.stderr);
  assert.equal(add.stdout, `license renewed successfully: ${old.id}\n`);
  const expires = Math.floor(renewedAt.getTime() / 1000) + 86_400;
  assert.deepEqual(
    query(db, "SELECT file_expires_at, node_id IS NOT NULL AS leased FROM licenses ORDER BY id"),
    [{ file_expires_at: expires, leased: 1 }, { file_expires_at: expires, leased: 1 }],
  );
  assert.deepEqual(query(db, "SELECT file FROM licenses WHERE seat_of IS NULL"), [
    { file: new TextEncoder().encode(renewed.certificate) },
  ]);
  const ls = await runRelay(["ls", "--json", "--database", db], { cwd: dir.path });
  const [listed] = JSON.parse(ls.stdout);
  assert.equal(listed.file_expires_at, rfc3339(expires));
  assert.equal(listed.seats_used, 2);
});

Deno.test("relay backup counts a multi-seat license once", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const { publicKey, file } = await mintLimited(dir.path, { maxMachines: 3 });
  assert.equal((await addSeats(dir.path, db, publicKey, file, "3")).code, 0);
  const plain = await mintFiles(dir.path, 1);
  const add = await runRelay(
    ["add", ...fileArgs(plain.files), "--public-key", plain.publicKey, "--database", db],
    { cwd: dir.path },
  );
  assert.equal(add.code, 0, add.stderr);
  const backup = await runRelay(["backup", "--to", "copy.sqlite", "--database", db], {
    cwd: dir.path,
  });
  assert.equal(backup.code, 0, backup.stderr);
  assert.match(backup.stdout, /^backup written: copy\.sqlite \(\d+ bytes, 2 licenses, /);
});
