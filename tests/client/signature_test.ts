/**
 * The client refuses answers it cannot trust when given the signing secret:
 * a proxy between it and a real, spawned relay alters bodies, strips
 * headers, or replays a signed `201` captured for another node.
 *
 * @module
 */

import assert from "node:assert/strict";
import { RelayClient } from "../../lib/client/mod.ts";
import { addMinted, startServer, tempDir } from "../helpers.ts";
import { ManualTimers, nextEvent } from "./support.ts";

const SECRET = "signature-test-secret";

/** A captured answer, replayed as it was. */
interface Captured {
  status: number;
  headers: Headers;
  body: string;
}

/**
 * An HTTP proxy to `upstream` on a free port; `alter` may change each
 * answer (or return a different one) before it goes back.
 */
function startProxy(
  upstream: string,
  alter: (answer: Captured, request: Request) => Captured,
): Deno.HttpServer<Deno.NetAddr> & { url: string } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const url = new URL(request.url);
    const response = await fetch(upstream + url.pathname + url.search, {
      method: request.method,
      headers: request.headers,
    });
    const answer = alter(
      { status: response.status, headers: response.headers, body: await response.text() },
      request,
    );
    return new Response(answer.body === "" ? null : answer.body, answer);
  });
  return Object.assign(server, { url: `http://127.0.0.1:${server.addr.port}` });
}

async function relayWithLicenses(dir: string, count: number) {
  await addMinted(dir, count);
  return await startServer(["--signing-secret", SECRET], { cwd: dir });
}

/** `DELETE /v1/nodes/{fp}`, expecting 204. */
async function releaseDirectly(url: string, fingerprint: string): Promise<void> {
  const response = await fetch(`${url}/v1/nodes/${fingerprint}`, { method: "DELETE" });
  await response.body?.cancel();
  assert.equal(response.status, 204);
}

function client(url: string, options: Partial<ConstructorParameters<typeof RelayClient>[0]> = {}) {
  return new RelayClient({
    url,
    fingerprint: "node-b",
    signingSecret: SECRET,
    clock: new ManualTimers(),
    ...options,
  });
}

Deno.test("RelayClient refuses an altered, unsigned or stale answer with bad_signature", async (t) => {
  await using dir = await tempDir();
  await using server = await relayWithLicenses(dir.path, 1);
  const cases: [string, (answer: Captured) => Captured][] = [
    [
      "a body altered",
      (a) => ({ ...a, body: a.body.replace(/"expires_in":\d+/, '"expires_in":999999') }),
    ],
    [
      "the status altered (201 shown as 200)",
      (a) => ({ ...a, status: a.status === 201 ? 200 : a.status }),
    ],
    ["the signature removed", (a) => {
      const headers = new Headers(a.headers);
      headers.delete("Relay-Signature");
      return { ...a, headers };
    }],
  ];
  for (const [name, alter] of cases) {
    await t.step(name, async () => {
      await using proxy = startProxy(server.url, alter);
      const relay = client(proxy.url);
      await assert.rejects(relay.claim(), { name: "RelayClientError", code: "bad_signature" });
      assert.equal(relay.state, "idle");
      // The seat was taken at the relay: give it back.
      await releaseDirectly(server.url, "node-b");
    });
  }
  await t.step("a clock more than the tolerance away from the signature's", async () => {
    const skewed = new ManualTimers(() => Date.now() + 301_000);
    const relay = client(server.url, { clock: skewed });
    await assert.rejects(relay.claim(), { code: "bad_signature" });
    await releaseDirectly(server.url, "node-b");
  });
});

Deno.test("RelayClient refuses a signed 201 captured for another node (v2), and one with v2 stripped", async () => {
  await using dir = await tempDir();
  await using server = await relayWithLicenses(dir.path, 2);
  // node-a's genuine, signed 201, captured on the wire.
  const response = await fetch(`${server.url}/v1/nodes/node-a`, { method: "PUT" });
  const captured: Captured = {
    status: response.status,
    headers: response.headers,
    body: await response.text(),
  };
  assert.equal(captured.status, 201);
  const replay = (headers: Headers) => () => ({ ...captured, headers });

  await using proxy = startProxy(server.url, replay(captured.headers));
  await assert.rejects(client(proxy.url).claim(), (error: Error & { code?: string }) => {
    assert.equal(error.code, "bad_signature");
    assert.match(error.message, /does not match PUT \/v1\/nodes\/node-b/);
    return true;
  });

  // The same answer with only the reference's v1, which does not bind the request.
  const v1Only = new Headers(captured.headers);
  v1Only.set("Relay-Signature", v1Only.get("Relay-Signature")!.replace(/,v2=[0-9a-f]+/, ""));
  await using stripped = startProxy(server.url, replay(v1Only));
  await assert.rejects(client(stripped.url).claim(), { code: "bad_signature" });
  // Accepting v1 alone (for a Keygen Relay) is what lets such a replay through.
  const lax = client(stripped.url, { allowV1Signatures: true, fingerprint: "node-c" });
  assert.equal((await lax.claim()).licenseKey, JSON.parse(captured.body).license_key);
  await releaseDirectly(server.url, "node-a");
});

Deno.test("RelayClient does not believe a tampered heartbeat: it retries and keeps its lease", async () => {
  await using dir = await tempDir();
  await using server = await relayWithLicenses(dir.path, 1);
  let tamper = false;
  await using proxy = startProxy(
    server.url,
    (a) =>
      tamper ? { ...a, body: a.body.replace(/"expires_at":\d+/, '"expires_at":9999999999') } : a,
  );
  const timers = new ManualTimers();
  const relay = client(proxy.url, { clock: timers });
  const lease = await relay.claim();
  tamper = true;
  const retry = nextEvent(relay, "retry");
  timers.fire();
  const { error } = await retry;
  assert.equal(error.code, "bad_signature");
  assert.equal(relay.lease?.expiresAt, lease.expiresAt);
  assert.equal(relay.state, "held");
  tamper = false;
  const heartbeat = nextEvent(relay, "heartbeat");
  timers.fire();
  assert.ok((await heartbeat).lease.expiresAt! < 9999999999);
  await relay.release();
});
