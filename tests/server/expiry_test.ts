/**
 * Expired license files through the real server (in-process `relay serve`
 * with a clock the test moves): never handed out, a node holding one is moved
 * to a valid license at its next heartbeat, `410` says when only expired
 * ones are left, and `serve` warns about them at start and once a day.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createLogger } from "../../lib/logger.ts";
import { openStore } from "../../lib/storage/open.ts";
import { startExpiryWarnings } from "../../server/expiry_warnings.ts";
import { auditTrail, type MintedFile, mintFiles, query, tempDir } from "../helpers.ts";
import { dbPath, fileArgs, runRelay } from "../cli/support.ts";
import { FakeClock, put, serveInProcess } from "./in_process.ts";

/** 2030-01-01T00:00:00Z, when the test files are issued. */
const T0 = Date.UTC(2030, 0, 1) / 1000;
const DAY = 86_400;

const EXPIRED_ONLY = { error: "no valid licenses available: every free license has expired" };
const EXHAUSTED = { error: "no licenses available" };

/** Mints one file per ttl (seconds), issued at T0. */
async function mint(
  dir: string,
  ttls: number[],
): Promise<{ publicKey: string; files: MintedFile[] }> {
  const files: MintedFile[] = [];
  let publicKey = "";
  for (const ttl of ttls) {
    const minted = await mintFiles(dir, 1, { issued: new Date(T0 * 1000), ttl });
    publicKey = minted.publicKey;
    files.push(...minted.files);
  }
  return { publicKey, files };
}

/** `relay add` at `at` (unix s), in-process; fails the test if it fails. */
async function add(dir: string, publicKey: string, files: MintedFile[], at: number, pool?: string) {
  const result = await runRelay(
    ["add", ...fileArgs(files), "--public-key", publicKey, ...(pool ? ["--pool", pool] : [])],
    { cwd: dir, now: new Date(at * 1000) },
  );
  assert.equal(result.code, 0, result.stderr);
}

/** What a 201 carries for `file` at `clock` with lease ttl `ttl`. */
function created(file: MintedFile, clock: number, ttl: number) {
  return {
    status: 201,
    body: {
      license_file: new TextEncoder().encode(file.certificate).toBase64(),
      license_key: file.key,
      expires_at: clock + ttl,
      expires_in: ttl,
    },
  };
}

/** Row id of a license by guid. */
function idOf(db: string, file: MintedFile): number {
  return query<{ id: number }>(db, "SELECT id FROM licenses WHERE guid = ?", file.id)[0].id;
}

Deno.test("relay serve never hands out an expired file, moves a node off one, and says why it answers 410", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const TTL = 7200;
  // F1 expires after 1 h, F2 after 2 h, F3 (added later) after 30 days.
  const { publicKey, files: [f1, f2, f3] } = await mint(dir.path, [3600, 7200, 30 * DAY]);
  await add(dir.path, publicKey, [f1, f2], T0);
  const clock = new FakeClock(new Date((T0 + 10) * 1000));
  const server = await serveInProcess(["--ttl", "2h"], { cwd: dir.path, clock });
  try {
    assert.deepEqual(await put(server.url, "a"), created(f1, clock.seconds, TTL));
    assert.deepEqual(await put(server.url, "b"), created(f2, clock.seconds, TTL));

    // F1 expired while leased: nothing is free, so a new node gets the reference's 410.
    clock.seconds = T0 + 3600;
    assert.deepEqual(await put(server.url, "c"), { status: 410, body: EXHAUSTED });

    // a's heartbeat moves it from F1 to F3, in one transaction.
    await add(dir.path, publicKey, [f3], T0 + 3600);
    const before = auditTrail(db).length;
    assert.deepEqual(await put(server.url, "a"), created(f3, clock.seconds, TTL));
    const [id1, id2, id3] = [f1, f2, f3].map((file) => idOf(db, file));
    assert.deepEqual(auditTrail(db).slice(before), [
      ["license.released", "license", id1, null],
      ["license.leased", "license", id3, null],
      ["node.heartbeat_ping", "node", 1, null],
    ]);

    // Only F1 is free, and it has expired.
    assert.deepEqual(await put(server.url, "c"), { status: 410, body: EXPIRED_ONLY });

    // b's heartbeat after F2 expired: released, nothing valid left, b deactivated.
    clock.seconds = T0 + 7200;
    const beforeB = auditTrail(db).length;
    assert.deepEqual(await put(server.url, "b"), { status: 410, body: EXPIRED_ONLY });
    assert.deepEqual(auditTrail(db).slice(beforeB), [
      ["license.released", "license", id2, null],
      ["node.deactivated", "node", 2, null],
      ["license.denied", "node", 2, null],
    ]);
    assert.deepEqual(
      query(
        db,
        "SELECT l.id, n.fingerprint FROM licenses l LEFT JOIN nodes n ON n.id = l.node_id ORDER BY l.id",
      ),
      [
        { id: id1, fingerprint: null },
        { id: id2, fingerprint: null },
        { id: id3, fingerprint: "a" },
      ],
    );
    assert.deepEqual(
      query(db, "SELECT fingerprint, deactivated_at FROM nodes ORDER BY id"),
      [
        { fingerprint: "a", deactivated_at: null },
        { fingerprint: "b", deactivated_at: T0 + 7200 },
        { fingerprint: "c", deactivated_at: T0 + 3600 },
      ],
      "c, refused every time, was never activated: its row only carries its denials",
    );

    // Expired files deleted: nothing is free, the reference's 410 again.
    const deleted = await runRelay(["del", "--license", `${f1.id},${f2.id}`], {
      cwd: dir.path,
      now: new Date(clock.seconds * 1000),
    });
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.deepEqual(await put(server.url, "c"), { status: 410, body: EXHAUSTED });
    assert.deepEqual(await put(server.url, "a"), {
      status: 202,
      body: { expires_at: clock.seconds + TTL, expires_in: TTL },
    });
  } finally {
    const { code, stderr } = await server.stop();
    assert.equal(code, 0, stderr);
  }
});

Deno.test("every strategy skips an expired file", async (t) => {
  await using dir = await tempDir();
  // F1 (added first) expires after 1 h, F2 (added last) after 30 days.
  const { publicKey, files: [f1, f2] } = await mint(dir.path, [3600, 30 * DAY]);
  await add(dir.path, publicKey, [f1, f2], T0);
  const clock = new FakeClock(new Date((T0 + 3600) * 1000));
  for (const strategy of ["fifo", "lifo", "rand"]) {
    await t.step(strategy, async () => {
      const server = await serveInProcess(["--strategy", strategy], { cwd: dir.path, clock });
      try {
        for (let i = 0; i < 5; i++) {
          assert.deepEqual(
            await put(server.url, `${strategy}-${i}`),
            created(f2, clock.seconds, 60),
          );
          const released = await fetch(`${server.url}/v1/nodes/${strategy}-${i}`, {
            method: "DELETE",
          });
          assert.equal(released.status, 204);
        }
      } finally {
        assert.equal((await server.stop()).code, 0);
      }
    });
  }
});

Deno.test("relay serve warns at start about expired and expiring license files", async (t) => {
  await using dir = await tempDir();
  // Expired 1 h after issue; expires after 3 days (in pool "prod"); after 30 days.
  const { publicKey, files: [expired, soon, later] } = await mint(dir.path, [
    3600,
    3 * DAY,
    30 * DAY,
  ]);
  await add(dir.path, publicKey, [expired, later], T0);
  await add(dir.path, publicKey, [soon], T0, "prod");
  const clock = new FakeClock(new Date((T0 + 7200) * 1000));
  const warnings = async (args: string[], env?: Record<string, string>) => {
    const server = await serveInProcess(args, { cwd: dir.path, clock, env });
    const { code, stdout } = await server.stop();
    assert.equal(code, 0);
    const lines = stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
    const listening = lines.findIndex((line) => line.msg === "relay listening");
    // Before the server listens, so the first thing an operator reads.
    return lines.slice(0, listening).map(({ time: _, ...line }) => line);
  };
  const expiredLine = {
    level: "warn",
    msg: "license files have expired: claims skip them until they are renewed",
    count: 1,
    licenses: expired.id,
  };

  await t.step("default window: 7 days", async () => {
    assert.deepEqual(await warnings([]), [expiredLine, {
      level: "warn",
      msg: "license files expire soon: renew them",
      count: 1,
      within: "604800s",
      licenses: `${soon.id} (prod)`,
    }]);
  });

  await t.step("--expiry-warning 1d: only the expired one", async () => {
    assert.deepEqual(await warnings(["--expiry-warning", "1d"]), [expiredLine]);
  });

  await t.step("RELAY_EXPIRY_WARNING=30d", async () => {
    assert.deepEqual(await warnings([], { RELAY_EXPIRY_WARNING: "30d" }), [expiredLine, {
      level: "warn",
      msg: "license files expire soon: renew them",
      count: 2,
      within: "2592000s",
      licenses: `${later.id}, ${soon.id} (prod)`,
    }]);
  });

  await t.step("nothing expiring: no warning", async () => {
    clock.seconds = T0;
    assert.deepEqual(await warnings(["--expiry-warning", "30m"]), []);
    clock.seconds = T0 + 7200;
  });

  await t.step("a bad --expiry-warning is a usage error", async () => {
    const result = await runRelay(["serve", "--port", "0", "--expiry-warning", "soon"], {
      cwd: dir.path,
    });
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.ok(
      result.stderr.startsWith("error: ") && result.stderr.includes('"soon"'),
      result.stderr,
    );
  });
});

Deno.test("expiry warnings repeat once a day on the server's clock", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const { publicKey, files } = await mint(dir.path, [3 * DAY, 8 * DAY]);
  await add(dir.path, publicKey, files, T0);
  const store = await openStore(db, { now: T0 });
  const clock = { seconds: T0 + 60 };
  const lines: Record<string, unknown>[] = [];
  let onLine = () => {};
  const logger = createLogger({
    verbosity: 0,
    json: true,
    write: (line) => {
      lines.push(JSON.parse(line));
      onLine();
    },
    now: () => new Date(clock.seconds * 1000),
  });
  // The timer asks every millisecond whether a day has passed on `clock`.
  const warnings = startExpiryWarnings({
    store,
    within: 7 * DAY,
    now: () => clock.seconds,
    logger,
    intervalMs: 1,
  });
  try {
    assert.deepEqual(await warnings.check(), { expired: 0, expiring: 1 });
    assert.equal(lines.length, 1);
    assert.equal(lines[0].licenses, files[0].id);

    clock.seconds += DAY - 1;
    assert.equal(await warnings.tick(), null, "not yet a day");
    assert.equal(lines.length, 1);

    // A day later on the clock the timer checks again on its own: now the
    // second file is within the window too.
    const next = new Promise<void>((resolve) => (onLine = resolve));
    clock.seconds += 1;
    await Promise.race([
      next,
      new Promise((_, reject) => setTimeout(() => reject(new Error("no check")), 10_000)),
    ]);
    assert.deepEqual(lines.slice(1).map((line) => [line.msg, line.count]), [
      ["license files expire soon: renew them", 2],
    ]);

    clock.seconds += 3 * DAY;
    assert.deepEqual(await warnings.tick(), { expired: 1, expiring: 1 });
  } finally {
    await warnings.stop();
    await store.close();
  }
});
