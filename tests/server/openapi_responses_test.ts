/**
 * The OpenAPI document against a running server (in-process `relay serve`,
 * with a clock the test moves): every route is driven through every status it
 * can answer, and each answer must be one the document describes (status,
 * headers, body; `./openapi_support.ts`). Then every response the document
 * lists must have been seen, so neither can drift from the other.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { tempDir } from "../helpers.ts";
import { dbPath } from "../cli/support.ts";
import { FakeClock, serveInProcess } from "./in_process.ts";
import { OPENAPI_DOCUMENT } from "../../server/openapi.ts";
import { ApiSpec } from "./openapi_support.ts";
import { addLicense, ApiExerciser, DAY, T0, TOKEN } from "./openapi_exercise.ts";

const NODE = "/v1/nodes/{fingerprint}";

/**
 * Responses this test cannot bring about: `GET` of a lease is a read, which a
 * locked database does not fail. The users' routes have their own test
 * (`openapi_users_test.ts`), and so has a database server out of reach
 * (`openapi_postgres_test.ts`).
 */
const NOT_EXERCISED = new Set(["GET /v1/nodes/{fingerprint} 500"]);
const OWN_TEST = /^[A-Z]+ \/v1\/users\/|^[A-Z]+ \/v1\/nodes\/\{fingerprint\} 503$/;

Deno.test("every answer of a running server is one its OpenAPI document describes, and every documented one comes", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  await Deno.writeTextFile(`${dir.path}/tokens`, `${TOKEN}\n`);
  // "live" has one valid license; "stale" one whose file expired at T0 + 1 h.
  await addLicense(dir.path, "live", 30 * DAY);
  await addLicense(dir.path, "stale", 3600);
  const clock = new FakeClock(new Date((T0 + 7200) * 1000));
  const spec = await ApiSpec.load();
  const seen = new Set<string>();

  {
    await using server = await serveInProcess(
      ["--auth-token-file", "tokens", "--signing-secret", "s3cret", "--ui", "--ttl", "1m"],
      // A writer waits 200 ms for the lock instead of 5 s.
      { cwd: dir.path, clock, global: ["--pragma", "busy_timeout=200"] },
    );
    const api = new ApiExerciser(spec, server);
    const live = { "Relay-Pool": "live" };

    await api.expect(200, "GET", "/v1/health", { template: "/v1/health", token: null });
    await api.expect(200, "HEAD", "/v1/health", { template: "/v1/health", token: null });

    // Claims: created, extended, conflict, and both 410s.
    const created = await api.expect(201, "PUT", "/v1/nodes/a", { template: NODE, headers: live });
    assert.equal(created.headers.get("relay-pool"), "live");
    assert.equal(created.headers.get("relay-license-expires"), String(T0 + 30 * DAY));
    await api.expect(202, "PUT", "/v1/nodes/a", { template: NODE, headers: live });
    await api.expect(409, "PUT", "/v1/nodes/a", {
      template: NODE,
      headers: { "Relay-Pool": "stale" },
    });
    const exhausted = await api.expect(410, "PUT", "/v1/nodes/b", {
      template: NODE,
      headers: live,
    });
    assert.equal(exhausted.headers.get("retry-after"), "60");
    const expiredOnly = await api.expect(410, "PUT", "/v1/nodes/c", {
      template: NODE,
      headers: { "Relay-Pool": "stale" },
    });
    assert.match(expiredOnly.body, /every free license has expired/);

    // Bad requests.
    await api.expect(400, "PUT", "/v1/nodes/%FF", { template: NODE });
    await api.expect(400, "GET", "/v1/nodes/a%00b", { template: NODE });
    await api.expect(400, "DELETE", `/v1/nodes/${"x".repeat(257)}`, { template: NODE });
    await api.expect(400, "PUT", "/v1/nodes/a", {
      template: NODE,
      headers: { "Relay-Pool": "nope" },
    });
    await api.expect(400, "PUT", "/v1/nodes/a?wait=soon", { template: NODE, headers: live });
    for (const path of ["/v1/health", "/metrics", "/ui", "/v1/openapi.json"]) {
      await api.expectBadHost("GET", path, path);
      await api.expectBadHost("HEAD", path, path);
    }
    for (const method of ["PUT", "GET", "DELETE"]) {
      await api.expectBadHost(method, "/v1/nodes/a", NODE);
    }

    // No token, a wrong one.
    await api.expect(401, "PUT", "/v1/nodes/a", { template: NODE, token: null });
    await api.expect(401, "GET", "/v1/nodes/a", { template: NODE, token: "wrong" });
    await api.expect(401, "DELETE", "/v1/nodes/a", { template: NODE, token: null });

    // Reading and releasing.
    await api.expect(200, "GET", "/v1/nodes/a", { template: NODE, headers: live });
    await api.expect(404, "GET", "/v1/nodes/zz", { template: NODE, headers: live });
    await api.expect(204, "DELETE", "/v1/nodes/a", { template: NODE, headers: live });
    await api.expect(404, "DELETE", "/v1/nodes/a", { template: NODE, headers: live });

    // Unknown paths, methods a path does not have.
    await api.expect(404, "GET", "/nope", { template: null });
    await api.expect(404, "PUT", "/v1/nodes/a/b", { template: null });
    await api.expect(404, "GET", "/v1/nodes/", { template: null, token: null });
    await api.expect(405, "POST", "/v1/nodes/a", { template: NODE });
    await api.expect(405, "HEAD", "/v1/nodes/a", { template: NODE });
    for (const path of ["/v1/health", "/metrics", "/ui", "/v1/openapi.json"]) {
      await api.expect(405, "POST", path, { template: path, token: null });
    }

    // Metrics, the status page, the document.
    await api.expect(200, "GET", "/metrics", { template: "/metrics", token: null });
    await api.expect(200, "HEAD", "/metrics", { template: "/metrics", token: null });
    await api.expect(200, "GET", "/ui", { template: "/ui", token: null });
    await api.expect(200, "HEAD", "/ui", { template: "/ui", token: null });
    const document = await api.expect(200, "GET", "/v1/openapi.json", {
      template: "/v1/openapi.json",
      token: null,
    });
    assert.deepEqual(JSON.parse(document.body), OPENAPI_DOCUMENT);
    await api.expect(200, "HEAD", "/v1/openapi.json", {
      template: "/v1/openapi.json",
      token: null,
    });

    // A database that takes no writes: health 503, claims and releases 500.
    await api.expect(201, "PUT", "/v1/nodes/d", { template: NODE, headers: live });
    const holder = new DatabaseSync(db);
    try {
      holder.exec("BEGIN IMMEDIATE");
      await api.expect(503, "GET", "/v1/health", { template: "/v1/health", token: null });
      await api.expect(503, "HEAD", "/v1/health", { template: "/v1/health", token: null });
      await api.expect(500, "PUT", "/v1/nodes/d", { template: NODE, headers: live });
      await api.expect(500, "DELETE", "/v1/nodes/d", { template: NODE, headers: live });
    } finally {
      if (holder.isTransaction) holder.exec("ROLLBACK");
      holder.close();
    }
    for (const key of api.seen) seen.add(key);
    assert.equal((await server.stop()).code, 0);
  }

  {
    // One pool, no metrics, no status page, no token, no signatures.
    await using server = await serveInProcess(["--pool", "live", "--no-metrics"], {
      cwd: dir.path,
      clock,
    });
    const api = new ApiExerciser(spec, server);
    await api.expect(400, "GET", "/v1/nodes/a", {
      template: NODE,
      headers: { "Relay-Pool": "stale" },
      token: null,
    });
    for (const method of ["GET", "HEAD"]) {
      await api.expect(404, method, "/metrics", { template: "/metrics", token: null });
      await api.expect(404, method, "/ui", { template: "/ui", token: null });
    }
    const unsigned = await api.expect(200, "GET", "/v1/health", {
      template: "/v1/health",
      token: null,
    });
    assert.equal(unsigned.headers.get("relay-signature"), null);
    for (const key of api.seen) seen.add(key);
    assert.equal((await server.stop()).code, 0);
  }

  const expected = spec.responses().filter((key) => !OWN_TEST.test(key) && !NOT_EXERCISED.has(key));
  assert.deepEqual(expected.filter((key) => !seen.has(key)), [], "documented, never answered");
  for (const key of NOT_EXERCISED) assert.ok(spec.responses().includes(key), key);
});
