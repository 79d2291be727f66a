/**
 * The OpenAPI document against a running server, for the users' routes
 * (`/v1/users/{email}`): every status they can answer, each answer checked
 * against the document (`./openapi_support.ts`), then every response the
 * document lists for them must have been seen.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { tempDir } from "../helpers.ts";
import { dbPath } from "../cli/support.ts";
import { FakeClock, serveInProcess } from "./in_process.ts";
import { ApiSpec } from "./openapi_support.ts";
import { addLicense, ApiExerciser, DAY, T0 } from "./openapi_exercise.ts";

const USER = "/v1/users/{email}";

/** `GET` of a lease is a read, which a locked database does not fail. */
const NOT_EXERCISED = new Set(["GET /v1/users/{email} 500"]);

Deno.test("every answer of the users' routes is one the OpenAPI document describes, and every documented one comes", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  await Deno.writeTextFile(`${dir.path}/tokens`, "t0ken\n");
  // "live" has one valid license; "stale" one whose file expired at T0 + 1 h.
  await addLicense(dir.path, "live", 30 * DAY);
  await addLicense(dir.path, "stale", 3600);
  const clock = new FakeClock(new Date((T0 + 7200) * 1000));
  const spec = await ApiSpec.load();
  await using server = await serveInProcess(
    ["--auth-token-file", "tokens", "--signing-secret", "s3cret", "--ttl", "1m"],
    // A writer waits 200 ms for the lock instead of 5 s.
    { cwd: dir.path, clock, global: ["--pragma", "busy_timeout=200"] },
  );
  const api = new ApiExerciser(spec, server);
  const live = { "Relay-Pool": "live" };
  const ada = "/v1/users/ada@example.com";

  // Claims: created, extended (with the file and key again), conflict, both 410s.
  const created = await api.expect(201, "PUT", ada, { template: USER, headers: live });
  assert.equal(created.headers.get("relay-pool"), "live");
  const extended = await api.expect(202, "PUT", ada, { template: USER, headers: live });
  assert.equal(JSON.parse(extended.body).license_file, JSON.parse(created.body).license_file);
  await api.expect(409, "PUT", ada, { template: USER, headers: { "Relay-Pool": "stale" } });
  const exhausted = await api.expect(410, "PUT", "/v1/users/bob@example.com", {
    template: USER,
    headers: live,
  });
  assert.equal(exhausted.headers.get("retry-after"), "60");
  const expiredOnly = await api.expect(410, "PUT", "/v1/users/cy@example.com", {
    template: USER,
    headers: { "Relay-Pool": "stale" },
  });
  assert.match(expiredOnly.body, /every free license has expired/);

  // Bad requests.
  const invalid = await api.expect(400, "PUT", "/v1/users/alice", { template: USER });
  assert.equal(invalid.body, '{"error":"invalid email"}\n');
  await api.expect(400, "GET", "/v1/users/alice@", { template: USER });
  await api.expect(400, "DELETE", "/v1/users/%ff@example.com", { template: USER });
  await api.expect(400, "PUT", ada, { template: USER, headers: { "Relay-Pool": "nope" } });
  await api.expect(400, "PUT", `${ada}?wait=soon`, { template: USER, headers: live });
  for (const method of ["PUT", "GET", "DELETE"]) {
    await api.expectBadHost(method, ada, USER);
    await api.expect(401, method, ada, { template: USER, token: null });
  }

  // Reading and releasing; unknown paths and methods.
  await api.expect(200, "GET", ada, { template: USER, headers: live });
  await api.expect(404, "GET", "/v1/users/zed@example.com", { template: USER, headers: live });
  await api.expect(204, "DELETE", ada, { template: USER, headers: live });
  await api.expect(404, "DELETE", ada, { template: USER, headers: live });
  await api.expect(405, "POST", ada, { template: USER });
  await api.expect(404, "GET", `${ada}/x`, { template: null });

  // A database that takes no writes: claims and releases 500.
  await api.expect(201, "PUT", ada, { template: USER, headers: live });
  const holder = new DatabaseSync(db);
  try {
    holder.exec("BEGIN IMMEDIATE");
    await api.expect(500, "PUT", ada, { template: USER, headers: live });
    await api.expect(500, "DELETE", ada, { template: USER, headers: live });
  } finally {
    if (holder.isTransaction) holder.exec("ROLLBACK");
    holder.close();
  }
  assert.equal((await server.stop()).code, 0);

  const expected = spec.responses().filter((key) =>
    key.includes(` ${USER} `) && !NOT_EXERCISED.has(key) &&
    // A database server out of reach: openapi_postgres_test.ts.
    !key.endsWith(" 503")
  );
  assert.deepEqual(expected.filter((key) => !api.seen.has(key)), [], "documented, never answered");
  for (const key of NOT_EXERCISED) assert.ok(spec.responses().includes(key), key);
});
