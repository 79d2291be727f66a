/**
 * Client authentication (`--auth-token-file`): the lease routes answer 401
 * without a valid bearer token, before anything else; health stays open; a
 * refused request changes nothing in the database; tokens never reach the
 * logs; bad token files stop `serve` with exit 2; SIGHUP re-reads the file.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createAuthenticator, parseTokenFile } from "../../server/auth.ts";
import { addMinted, dbPath, query, runCli, startServer, tempDir, waitUntil } from "../helpers.ts";
import { call, type Target } from "./http_support.ts";
import { serveInProcess } from "./in_process.ts";

const GOOD = "tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const OTHER = "second-token.with_all~chars+/==";
const UNAUTHORIZED = '{"error":"unauthorized"}\n';

Deno.test("parseTokenFile() takes one token per line, skipping blanks and comments", () => {
  assert.deepEqual(
    parseTokenFile(`# application nodes\n${GOOD}\n\n  ${OTHER}  \r\n# old: revoked\n`, "t"),
    [GOOD, OTHER],
  );
  assert.throws(() => parseTokenFile("# nothing\n\n", "tokens"), {
    message: 'Auth token file "tokens" holds no token',
  });
  const bad = () => parseTokenFile(`${GOOD}\nhas a space\n`, "tokens");
  assert.throws(bad, /line 2: not a bearer token/);
  // The message names the line, never its text.
  assert.throws(bad, (error: Error) => !error.message.includes("space"));
});

Deno.test("createAuthenticator() accepts Bearer with a known token, and nothing else", async () => {
  const auth = await createAuthenticator([GOOD, OTHER]);
  assert.equal(auth.size, 2);
  for (const header of [`Bearer ${GOOD}`, `bearer ${OTHER}`, `BEARER  ${GOOD} `]) {
    assert.equal(await auth.check(header), true, header);
  }
  for (
    const header of [
      null,
      "",
      "Bearer",
      "Bearer ",
      `Basic ${GOOD}`,
      `Bearer ${GOOD}x`,
      GOOD,
      `Bearer ${GOOD.slice(1)}`,
      `Bearer ${GOOD} ${OTHER}`,
    ]
  ) {
    assert.equal(await auth.check(header), false, String(header));
  }
  await auth.replace([OTHER]);
  assert.equal(await auth.check(`Bearer ${GOOD}`), false);
  assert.equal(await auth.check(`Bearer ${OTHER}`), true);
});

Deno.test("with --auth-token-file the lease routes need a token and health does not", async () => {
  await using dir = await tempDir();
  await addMinted(dir.path, 2);
  await Deno.writeTextFile(`${dir.path}/tokens`, `${GOOD}\n${OTHER}\n`);
  await using server = await serveInProcess(
    ["--auth-token-file", "tokens", "--signing-secret", "s3cret"],
    { cwd: dir.path, global: ["-vvv"] },
  );
  assert.equal(server.startup.auth, "2 tokens");
  const target: Target = { url: server.url, clock: server.clock, client: server.client };
  const refused = [
    ["PUT", "/v1/nodes/node-1", {}],
    ["PUT", "/v1/nodes/node-1", { Authorization: `Bearer ${GOOD}x` }],
    ["PUT", "/v1/nodes/node-1", { Authorization: `Basic ${GOOD}` }],
    ["DELETE", "/v1/nodes/node-1", {}],
    // Before the method, the path or the pool are looked at.
    ["POST", "/v1/nodes/node-1", {}],
    ["PUT", "/v1/nodes/a/b", {}],
    ["PUT", "/v1/nodes/%ff", {}],
    ["PUT", "/v1/nodes/node-1", { "Relay-Pool": "nope" }],
  ] as const;
  for (const [method, path, headers] of refused) {
    const reply = await call(target, method, path, headers);
    assert.equal(reply.status, 401, `${method} ${path}`);
    assert.equal(reply.body, UNAUTHORIZED);
    assert.equal(reply.headers.get("WWW-Authenticate"), "Bearer");
    assert.equal(reply.headers.get("Content-Type"), "application/json");
    assert.ok(reply.headers.get("Relay-Signature"), "a 401 is signed too");
  }
  assert.deepEqual(query(dbPath(dir.path), "SELECT count(*) AS n FROM nodes"), [{ n: 0 }]);
  assert.deepEqual(
    query(
      dbPath(dir.path),
      "SELECT count(*) AS n FROM audit_logs WHERE event_type_id != 1 AND event_type_id != 11",
    ),
    [{ n: 0 }],
  );

  assert.equal((await call(target, "GET", "/v1/health")).status, 200);
  assert.equal((await call(target, "GET", "/v1/other")).status, 404);
  const auth = (token: string) => ({ Authorization: `Bearer ${token}` });
  assert.equal((await call(target, "PUT", "/v1/nodes/node-1", auth(GOOD))).status, 201);
  assert.equal((await call(target, "PUT", "/v1/nodes/node-1", auth(GOOD))).status, 202);
  assert.equal((await call(target, "PUT", "/v1/nodes/node-2", auth(OTHER))).status, 201);
  assert.equal((await call(target, "PUT", "/v1/nodes/node-3", auth(OTHER))).status, 410);
  assert.equal((await call(target, "DELETE", "/v1/nodes/node-1", auth(GOOD))).status, 204);
  assert.equal((await call(target, "POST", "/v1/nodes/node-1", auth(GOOD))).status, 405);

  const { code, stdout, stderr } = await server.stop();
  assert.equal(code, 0);
  assert.ok(stdout.includes('"status":401'), "refusals are logged");
  for (const token of [GOOD, OTHER]) {
    assert.ok(!stdout.includes(token) && !stderr.includes(token), "no token in the logs");
  }
});

Deno.test("a token file that is missing, empty or malformed stops serve before it listens", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/empty`, "# none yet\n");
  await Deno.writeTextFile(`${dir.path}/bad`, `${GOOD}\nsecret with spaces\n`);
  const cases = [
    ["empty", 2, `error: Auth token file "empty" holds no token\n`],
    ["bad", 2, `error: Auth token file "bad", line 2: not a bearer token`],
    ["missing", 1, `error: Cannot read auth token file "missing"`],
  ] as const;
  for (const [file, code, message] of cases) {
    const result = await runCli(["serve", "--port", "0", "--auth-token-file", file], {
      cwd: dir.path,
    });
    assert.equal(result.code, code, result.stderr);
    assert.ok(result.stderr.startsWith(message), result.stderr);
    assert.ok(!result.stderr.includes("spaces"), "never the file's text");
    assert.equal(result.stdout, "");
  }
  const fromEnv = await runCli(["serve", "--port", "0"], {
    cwd: dir.path,
    env: { RELAY_AUTH_TOKEN_FILE: "empty" },
  });
  assert.equal(fromEnv.code, 2);
});

/** The `count`th log line with `msg`, once the server has written it. */
async function logged(lines: string[], msg: string, count = 1): Promise<Record<string, unknown>> {
  const found = () => lines.filter((line) => line.includes(`"msg":"${msg}"`));
  await waitUntil(() => found().length >= count, `log line "${msg}"`);
  return JSON.parse(found()[count - 1]);
}

Deno.test("SIGHUP re-reads the token file; one that cannot be used keeps the old tokens", async () => {
  await using dir = await tempDir();
  await addMinted(dir.path, 3);
  const file = `${dir.path}/tokens`;
  await Deno.writeTextFile(file, `${GOOD}\n`);
  await using server = await startServer(["--auth-token-file", "tokens"], { cwd: dir.path });
  const put = async (node: string, token: string) =>
    (await call(server.url, "PUT", `/v1/nodes/${node}`, { Authorization: `Bearer ${token}` }))
      .status;
  assert.equal(await put("node-1", GOOD), 201);
  assert.equal(await put("node-2", OTHER), 401);

  await Deno.writeTextFile(file, `# rotated\n${OTHER}\n`);
  server.process.kill("SIGHUP");
  const reloaded = await logged(server.lines, "auth tokens reloaded");
  assert.equal(reloaded.tokens, 1);
  assert.equal(await put("node-2", OTHER), 201);
  assert.equal(await put("node-1", GOOD), 401);

  await Deno.writeTextFile(file, "not a token\n");
  server.process.kill("SIGHUP");
  const kept = await logged(server.lines, "auth tokens not reloaded: keeping the previous ones");
  assert.equal(kept.level, "error");
  assert.match(String(kept.error), /line 1: not a bearer token/);
  assert.equal(await put("node-3", OTHER), 201);

  const { status, stdout, stderr } = await server.stop("SIGTERM");
  assert.equal(status.code, 0, stderr);
  for (const token of [GOOD, OTHER]) assert.ok(!stdout.includes(token));
});
