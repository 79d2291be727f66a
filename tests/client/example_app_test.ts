/**
 * The example application (`scripts/example_app.ts`), run as a real process
 * against a spawned relay: it claims on start and releases its seat on
 * Ctrl-C (SIGINT), exiting 130.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { addMinted, childEnv, dbPath, query, startServer, tempDir } from "../helpers.ts";

const EXAMPLE = fileURLToPath(new URL("../../scripts/example_app.ts", import.meta.url));

Deno.test("the example app claims on start and releases its seat on Ctrl-C", async () => {
  await using dir = await tempDir();
  const [file] = await addMinted(dir.path, 1);
  await Deno.writeTextFile(`${dir.path}/token`, "example-token\n");
  await Deno.writeTextFile(`${dir.path}/tokens`, "example-token\n");
  await using server = await startServer(
    ["--signing-secret", "example-secret", "--auth-token-file", "tokens"],
    { cwd: dir.path },
  );
  const app = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      EXAMPLE,
      "--url",
      server.url,
      "--fingerprint",
      "example-node",
      "--token-file",
      `${dir.path}/token`,
      "--signing-secret",
      "example-secret",
    ],
    env: childEnv(),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const leased = () =>
    query<{ n: number }>(
      dbPath(dir.path),
      "SELECT count(*) AS n FROM licenses WHERE node_id IS NOT NULL",
    )[0].n;
  const reader = app.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let output = "";
  while (!output.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    output += value;
  }
  assert.match(output, new RegExp(`^license claimed: ${file.id} until \\d{4}-`));
  assert.equal(leased(), 1);

  app.kill("SIGINT");
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    output += chunk.value;
  }
  const status = await app.status;
  const stderr = await new Response(app.stderr).text();
  assert.equal(status.code, 130, stderr);
  assert.match(output, /\nseat released\n$/);
  assert.equal(leased(), 0);
});
