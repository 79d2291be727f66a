/**
 * The same SDK under Node.js: the test bundles `lib/client/mod.ts` with
 * `deno bundle` exactly as `deno task client:build` does (Node.js 20 runs no
 * TypeScript), and runs `node_client.mjs` on it against a real, spawned
 * relay: license files of every algorithm verified offline, claim →
 * heartbeat → release with signatures and a token, and SIGTERM releasing the
 * seat before the process exits.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { mintLicenseFile } from "../../scripts/mint.ts";
import {
  addMinted,
  childEnv,
  dbPath,
  query,
  sharedKeyPair,
  startServer,
  tempDir,
} from "../helpers.ts";

const ROOT = fromFileUrl(new URL("../../", import.meta.url));
const SCRIPT = fromFileUrl(new URL("./node_client.mjs", import.meta.url));
const SECRET = "node-test-secret";
const TOKEN = "node-test-token";

/** Bundles the client into `dir` with the arguments of the `client:build` task. */
async function bundle(dir: string): Promise<string> {
  const tasks = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks;
  const args: string[] = tasks["client:build"].split(" ").slice(1);
  const out = `${dir}/relay-client.js`;
  args[args.indexOf("-o") + 1] = out;
  const result = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: childEnv(),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
  return out;
}

/** Runs the Node script on `config`; returns its exit code and JSON lines. */
function node(bundled: string, config: Record<string, unknown>, dir: string) {
  const path = `${dir}/config-${crypto.randomUUID()}.json`;
  Deno.writeTextFileSync(path, JSON.stringify(config));
  return new Deno.Command("node", {
    args: [SCRIPT, bundled, path],
    stdout: "piped",
    stderr: "piped",
  });
}

function lines(stdout: Uint8Array): Record<string, unknown>[] {
  return new TextDecoder().decode(stdout).trim().split("\n").map((line) => JSON.parse(line));
}

Deno.test("the client SDK runs on Node.js: files, claim, heartbeat, release, signatures, SIGTERM", async (t) => {
  await using dir = await tempDir();
  const bundled = await bundle(dir.path);
  const publicKeys = {
    ed25519: (await sharedKeyPair("ed25519")).publicKeyText,
    rsa: (await sharedKeyPair("rsa")).publicKeyText,
  };

  await t.step("license files of every algorithm verify and decrypt offline", async () => {
    const algorithms = [
      "aes-256-gcm+ed25519",
      "base64+ed25519",
      "aes-256-gcm+rsa-pss-sha256",
      "aes-256-gcm+rsa-sha256",
      "base64+rsa-pss-sha256",
      "base64+rsa-sha256",
    ] as const;
    const files = [];
    for (const algorithm of algorithms) {
      const kind = algorithm.endsWith("ed25519") ? "ed25519" : "rsa";
      const minted = await mintLicenseFile(await sharedKeyPair(kind), {
        algorithm,
        entitlements: ["PRO", algorithm],
      });
      files.push({ ...minted, kind });
    }
    const output = await node(bundled, { mode: "files", files, publicKeys }, dir.path).output();
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    assert.deepEqual(lines(output.stdout), [
      ...files.map((file, i) => ({
        algorithm: algorithms[i],
        id: file.id,
        entitlements: ["PRO", algorithms[i]],
      })),
      { wrongKey: "invalid_license_file" },
    ]);
  });

  const [file] = await addMinted(dir.path, 1);
  await Deno.writeTextFile(`${dir.path}/tokens`, `${TOKEN}\n`);
  await using server = await startServer(
    ["--signing-secret", SECRET, "--auth-token-file", "tokens"],
    { cwd: dir.path },
  );
  const base = {
    url: server.url,
    token: TOKEN,
    secret: SECRET,
    publicKeys,
    fingerprint: "node-js",
  };
  const leased = () =>
    query<{ n: number }>(
      dbPath(dir.path),
      "SELECT count(*) AS n FROM licenses WHERE node_id IS NOT NULL",
    )[0].n;

  await t.step("claim, heartbeat and release, and a wrong secret refused", async () => {
    const output = await node(bundled, { ...base, mode: "lifecycle" }, dir.path).output();
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    assert.deepEqual(lines(output.stdout), [
      { claimed: file.id, file: file.certificate, entitlements: [] },
      { heartbeat: file.id, valid: true },
      { events: ["lease", "heartbeat", "released"], state: "released", pending: 0 },
      { wrongSecret: "bad_signature" },
    ]);
    // The relay did lease to "forged"; its client refused the answer it could not trust.
    assert.equal(leased(), 1);
    const freed = await fetch(`${server.url}/v1/nodes/forged`, {
      method: "DELETE",
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    await freed.body?.cancel();
    assert.equal(freed.status, 204);
  });

  await t.step("SIGTERM releases the seat, then the process exits 143", async () => {
    const child = node(bundled, { ...base, mode: "signal" }, dir.path).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const { value } = await reader.read();
    assert.deepEqual(JSON.parse(value!.trim()), { claimed: file.id });
    assert.equal(leased(), 1);
    child.kill("SIGTERM");
    let rest = "";
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      rest += chunk.value;
    }
    const status = await child.status;
    await new Response(child.stderr).text();
    assert.equal(status.code, 143);
    assert.deepEqual(JSON.parse(rest.trim()), { released: true });
    assert.equal(leased(), 0);
  });
});
