/**
 * The OpenAPI document's `503 database unavailable` answers of the lease
 * routes, which only a database server out of reach brings about: a
 * PostgreSQL server of the test's own, stopped under a running relay.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileArgs, runRelay } from "../cli/support.ts";
import { mintFiles, tempDir } from "../helpers.ts";
import { startPostgresServer } from "../postgres_server.ts";
import { FakeClock, serveInProcess } from "./in_process.ts";
import { ApiSpec } from "./openapi_support.ts";
import { ApiExerciser, DAY, T0 } from "./openapi_exercise.ts";

const ROUTES = ["/v1/nodes/{fingerprint}", "/v1/users/{email}"];

Deno.test("the lease routes' 503 while PostgreSQL is out of reach is the one the document describes", async () => {
  await using dir = await tempDir();
  await using server = await startPostgresServer();
  const { publicKey, files } = await mintFiles(dir.path, 1, {
    issued: new Date(T0 * 1000),
    ttl: 30 * DAY,
  });
  const added = await runRelay(
    ["add", ...fileArgs(files), "--public-key", publicKey, "--database", server.adminUrl],
    { cwd: dir.path, now: new Date(T0 * 1000) },
  );
  assert.equal(added.code, 0, added.stderr);
  const spec = await ApiSpec.load();
  await using relay = await serveInProcess([], {
    cwd: dir.path,
    database: server.adminUrl,
    clock: new FakeClock(new Date((T0 + 60) * 1000)),
  });
  const api = new ApiExerciser(spec, relay);
  await api.expect(201, "PUT", "/v1/nodes/a", { template: ROUTES[0], token: null });

  await server.stop("fast");
  for (const method of ["PUT", "GET", "DELETE"]) {
    const answer = await api.expect(503, method, "/v1/nodes/a", {
      template: ROUTES[0],
      token: null,
    });
    assert.match(JSON.parse(answer.body).error, /^database unavailable: /);
    await api.expect(503, method, "/v1/users/ann@example.com", {
      template: ROUTES[1],
      token: null,
    });
  }
  const expected = spec.responses().filter((key) =>
    ROUTES.some((route) => key.includes(` ${route} `)) && key.endsWith(" 503")
  );
  assert.equal(expected.length, 6);
  assert.deepEqual(expected.filter((key) => !api.seen.has(key)), [], "documented, never answered");
  await server.start();
  assert.equal((await relay.stop()).code, 0);
});
