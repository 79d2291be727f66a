/**
 * Expired license files through the real server (in-process `relay serve`
 * with a clock the test moves): never handed out, a node holding one is moved
 * to a valid license at its next heartbeat, `410` says when only expired
 * ones are left, and `serve` warns about them at start and once a day. Each
 * scenario runs on SQLite and on PostgreSQL, and the engines' replies,
 * output and rows are compared (see scenario_support.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { createLogger } from "../../lib/logger.ts";
import { openStore } from "../../lib/storage/open.ts";
import { startExpiryWarnings } from "../../server/expiry_warnings.ts";
import type { MintedFile } from "../helpers.ts";
import { assertEmpty, assertJson, createdBody, errorBody, extendedBody } from "./http_support.ts";
import { scenario, type ScenarioDatabase } from "./scenario_support.ts";

/** 2030-01-01T00:00:00Z, when the test files are issued. */
const T0 = Date.UTC(2030, 0, 1) / 1000;
const DAY = 86_400;

const EXPIRED_ONLY = errorBody("no valid licenses available: every free license has expired");
const EXHAUSTED = errorBody("no licenses available");

const at = (unix: number) => new Date(unix * 1000);

/** Adds one file per ttl (seconds), issued at T0, with `relay add` at `added` (unix s). */
async function add(
  db: ScenarioDatabase,
  ttls: number[],
  added: number,
  pool?: string,
): Promise<MintedFile[]> {
  const files: MintedFile[] = [];
  for (const ttl of ttls) {
    files.push(...await db.add(1, { mint: { issued: at(T0), ttl }, at: at(added), pool }));
  }
  return files;
}

scenario(
  "relay serve never hands out an expired file, moves a node off one, and says why it answers 410",
  async (_t, s) => {
    const db = s.db;
    const TTL = 7200;
    // F1 expires after 1 h, F2 after 2 h; F3 (added later) after 30 days.
    const [f1, f2] = await add(db, [3600, 7200], T0);
    const clock = s.clock;
    clock.seconds = T0 + 10;
    const server = await s.serve(["--ttl", "2h"]);
    assertJson(await s.claim(server, "a"), 201, createdBody(f1.certificate, f1.key, T0 + 10, TTL));
    assertJson(await s.claim(server, "b"), 201, createdBody(f2.certificate, f2.key, T0 + 10, TTL));

    // F1 expired while leased: nothing is free, so a new node gets the reference's 410.
    clock.seconds = T0 + 3600;
    assertJson(await s.claim(server, "c"), 410, EXHAUSTED);

    // a's heartbeat moves it from F1 to F3, in one transaction.
    const [f3] = await add(db, [30 * DAY], T0 + 3600);
    const before = (await db.auditTrail()).length;
    assertJson(
      await s.claim(server, "a"),
      201,
      createdBody(f3.certificate, f3.key, T0 + 3600, TTL),
    );
    const [id1, id2, id3] = await Promise.all(
      [f1, f2, f3].map(async (f) => (await db.license(f.key)).id),
    );
    const [a, b] = [(await db.node("a")).id, (await db.node("b")).id];
    assert.deepEqual((await db.auditTrail()).slice(before), [
      ["license.released", "license", id1, null],
      ["license.leased", "license", id3, null],
      ["node.heartbeat_ping", "node", a, null],
    ]);

    // Only F1 is free, and it has expired.
    assertJson(await s.claim(server, "c"), 410, EXPIRED_ONLY);

    // b's heartbeat after F2 expired: released, nothing valid left, b deactivated.
    clock.seconds = T0 + 7200;
    const beforeB = (await db.auditTrail()).length;
    assertJson(await s.claim(server, "b"), 410, EXPIRED_ONLY);
    assert.deepEqual((await db.auditTrail()).slice(beforeB), [
      ["license.released", "license", id2, null],
      ["node.deactivated", "node", b, null],
      ["license.denied", "node", b, null],
    ]);
    assert.deepEqual(
      await db.rows(
        "SELECT l.id, n.fingerprint FROM licenses l LEFT JOIN nodes n ON n.id = l.node_id ORDER BY l.id",
      ),
      [
        { id: id1, fingerprint: null },
        { id: id2, fingerprint: null },
        { id: id3, fingerprint: "a" },
      ],
    );
    assert.deepEqual(
      await db.rows("SELECT fingerprint, deactivated_at FROM nodes ORDER BY id"),
      [
        { fingerprint: "a", deactivated_at: null },
        { fingerprint: "b", deactivated_at: T0 + 7200 },
        { fingerprint: "c", deactivated_at: T0 + 3600 },
      ],
      "c, refused every time, was never activated: its row only carries its denials",
    );

    // Expired files deleted: nothing is free, the reference's 410 again.
    const deleted = await s.relay(["del", "--license", `${f1.id},${f2.id}`], { now: clock.now() });
    assert.equal(deleted.code, 0, deleted.stderr);
    assertJson(await s.claim(server, "c"), 410, EXHAUSTED);
    assertJson(await s.claim(server, "a"), 202, extendedBody(clock.seconds, TTL));
    const { code, stderr } = await server.stop();
    assert.equal(code, 0, stderr);
  },
);

scenario("every strategy skips an expired file", async (t, s) => {
  // F1 (added first) expires after 1 h, F2 (added last) after 30 days.
  const [, f2] = await add(s.db, [3600, 30 * DAY], T0);
  s.clock.seconds = T0 + 3600;
  for (const strategy of ["fifo", "lifo", "rand"]) {
    await t.step(strategy, async () => {
      const server = await s.serve(["--strategy", strategy]);
      for (let i = 0; i < 5; i++) {
        const reply = await s.claim(server, `${strategy}-${i}`);
        assertJson(reply, 201, createdBody(f2.certificate, f2.key, s.clock.seconds, 60));
        assertEmpty(await s.release(server, `${strategy}-${i}`), 204);
      }
      assert.equal((await server.stop()).code, 0);
    });
  }
});

scenario("relay serve warns at start about expired and expiring license files", async (t, s) => {
  // Expired 1 h after issue; expires after 3 days (in pool "prod"); after 30 days.
  const [expired, later] = await add(s.db, [3600, 30 * DAY], T0);
  const [soon] = await add(s.db, [3 * DAY], T0, "prod");
  const clock = s.clock;
  clock.seconds = T0 + 7200;
  const warnings = async (args: string[], env?: Record<string, string>) => {
    const server = await s.serve(args, { env });
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
    const result = await s.relay(["serve", "--port", "0", "--expiry-warning", "soon"]);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.ok(
      result.stderr.startsWith("error: ") && result.stderr.includes('"soon"'),
      result.stderr,
    );
  });
});

scenario("expiry warnings repeat once a day on the server's clock", async (_t, s) => {
  const files = await add(s.db, [3 * DAY, 8 * DAY], T0);
  const store = await openStore(s.db.database, { now: T0 });
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
