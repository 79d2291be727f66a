/**
 * `diagnose()`: the doctor's judgement of an inspection, for the cases a real
 * file cannot easily show in every test setting (owners that differ, which
 * needs root; the exact edges of the lease grace and the clock).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type Check,
  diagnose,
  needsAction,
  OVERDUE_LEASE_GRACE_SECONDS,
} from "../../lib/doctor.ts";
import type { DatabaseContents, Inspection } from "../../lib/storage/store.ts";

const NOW = 1_800_000_000;
const OPTIONS = { now: NOW, within: 7 * 86_400, withinText: "7d" };

/** A healthy inspection, with `changes`. */
function inspection(
  changes: Partial<Inspection> = {},
  contents: Partial<DatabaseContents> = {},
): Inspection {
  return {
    files: [{ path: "/srv/relay.sqlite", role: "database", mode: 0o600, uid: 998 }],
    unreadable: null,
    integrity: ["ok"],
    foreignKeyViolations: [],
    foreignKeyError: null,
    schema: { kind: "current", version: 8 },
    contents: {
      licenses: 2,
      expiring: [],
      overdueLeases: [],
      newestAudit: NOW - 10,
      newestHeartbeat: NOW - 5,
      ...contents,
    },
    contentsError: null,
    writeRefusal: null,
    ...changes,
  };
}

function check(checks: Check[], name: string): Check {
  const found = checks.find((c) => c.name === name);
  assert.ok(found, name);
  return found;
}

Deno.test("diagnose() passes a healthy inspection", () => {
  const checks = diagnose(inspection(), OPTIONS);
  assert.deepEqual(checks.filter((c) => c.status !== "ok"), []);
  assert.equal(needsAction(checks), false);
});

Deno.test("diagnose() warns when the -wal or -shm has another owner than the database", () => {
  const checks = diagnose(
    inspection({
      files: [
        { path: "/srv/relay.sqlite", role: "database", mode: 0o600, uid: 998 },
        { path: "/srv/relay.sqlite-wal", role: "wal", mode: 0o600, uid: 998 },
        { path: "/srv/relay.sqlite-shm", role: "shm", mode: 0o600, uid: 0 },
      ],
    }),
    OPTIONS,
  );
  assert.deepEqual(check(checks, "owner"), {
    name: "owner",
    status: "warn",
    message: "the database is owned by uid 998, but /srv/relay.sqlite-shm by uid 0: " +
      "a server running as uid 998 may fail to open it",
    hint: "chown 998 /srv/relay.sqlite-shm, and run relay commands as the service's user",
  });
  assert.equal(needsAction(checks), true);
});

Deno.test("diagnose() names each file readable by others, -wal and -shm included", () => {
  const checks = diagnose(
    inspection({
      files: [
        { path: "/srv/relay.sqlite", role: "database", mode: 0o600, uid: 1 },
        { path: "/srv/relay.sqlite-wal", role: "wal", mode: 0o604, uid: 1 },
        { path: "/srv/relay.sqlite-shm", role: "shm", mode: 0o640, uid: 1 },
      ],
    }),
    OPTIONS,
  );
  assert.equal(check(checks, "file modes").status, "warn");
  assert.equal(
    check(checks, "file modes").hint,
    "chmod 600 /srv/relay.sqlite-wal /srv/relay.sqlite-shm",
  );
});

Deno.test("diagnose() calls a lease overdue a minute after its expiry, not before", async (t) => {
  for (
    const [ago, status] of [[OVERDUE_LEASE_GRACE_SECONDS - 1, "ok"], [
      OVERDUE_LEASE_GRACE_SECONDS,
      "warn",
    ]] as const
  ) {
    await t.step(`expired ${ago}s ago: ${status}`, () => {
      const checks = diagnose(
        inspection({}, {
          overdueLeases: [{ fingerprint: "fp", license: "lic", leaseExpiresAt: NOW - ago }],
        }),
        OPTIONS,
      );
      assert.equal(check(checks, "leases").status, status);
    });
  }
});

Deno.test("diagnose() fails the clock when it is behind a heartbeat, and says by how much", () => {
  const checks = diagnose(inspection({}, { newestHeartbeat: NOW + 2 * 86_400 + 3_600 }), OPTIONS);
  const clock = check(checks, "clock");
  assert.equal(clock.status, "fail");
  assert.match(clock.message, / is 2d1h behind a node's last heartbeat /);
  // One second behind is behind.
  const close = diagnose(inspection({}, { newestAudit: NOW + 1 }), OPTIONS);
  assert.match(check(close, "clock").message, / is 1s behind the newest audit record /);
});

Deno.test("diagnose() separates expired licenses from expiring ones", () => {
  const checks = diagnose(
    inspection({}, {
      expiring: [
        { guid: "gone", fileExpiresAt: NOW, expiresAt: null },
        { guid: "soon", fileExpiresAt: null, expiresAt: NOW + 3_600 },
      ],
    }),
    OPTIONS,
  );
  assert.equal(
    check(checks, "licenses").message,
    "1 license expired (gone), 1 license expires within 7d (soon)",
  );
});
