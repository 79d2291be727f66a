/**
 * Helpers shared by the server tests: HTTP calls that read the whole reply,
 * signature checks and free ports. Requests go to a spawned server (a URL,
 * checked against the real clock) or to an in-process one (checked against
 * the clock the test controls).
 *
 * @module
 */

import assert from "node:assert/strict";
import { verifySignature } from "../../server/signing.ts";
import { runCli } from "../helpers.ts";
export { dbPath, exists, spawnRelay } from "../helpers.ts";
export type { ServerProcess as RelayProcess } from "../helpers.ts";

/** The test's clock, in unix seconds. */
export function unixNow(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * Where a request goes: a base URL (a server on the real clock), or a server
 * with a clock the test controls (an in-process one), and its own client.
 */
export type Target = string | { url: string; clock: { unix(): number }; client?: Deno.HttpClient };

/** A response read to the end. */
export interface Reply {
  status: number;
  headers: Headers;
  body: string;
  /**
   * The server's clock when the request was sent, in unix seconds, if the
   * test controls it (it stands still during a request); null: the real clock.
   */
  clock: number | null;
  /** The request it answers: method and path (without the query), as `v2` signs them. */
  request: { method: string; path: string };
}

/** Sends one request and reads the whole body. */
export async function call(
  target: Target,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const [base, clock, client] = typeof target === "string"
    ? [target, null, undefined]
    : [target.url, target.clock.unix(), target.client];
  const res = await fetch(`${base}${path}`, { method, headers, client });
  const body = await res.text();
  const request = { method, path: new URL(path, "http://relay.invalid").pathname };
  return { status: res.status, headers: res.headers, body, clock, request };
}

/** `PUT /v1/nodes/{fp}` (fp used as is: encode it yourself if needed). */
export function claim(target: Target, fp: string, pool?: string): Promise<Reply> {
  return call(target, "PUT", `/v1/nodes/${fp}`, pool === undefined ? {} : { "Relay-Pool": pool });
}

/** `DELETE /v1/nodes/{fp}`. */
export function release(target: Target, fp: string, pool?: string): Promise<Reply> {
  return call(
    target,
    "DELETE",
    `/v1/nodes/${fp}`,
    pool === undefined ? {} : { "Relay-Pool": pool },
  );
}

/** The exact JSON error body the API sends. */
export function errorBody(message: string): string {
  return JSON.stringify({ error: message }) + "\n";
}

/**
 * `Relay-Clock` as a number, checked to equal the server's clock the test
 * controls, or to be within ±5 s of the real clock.
 */
export function relayClock(reply: Reply): number {
  const text = reply.headers.get("Relay-Clock");
  assert.ok(text !== null, "Relay-Clock header present");
  assert.match(text, /^\d+$/);
  const clock = Number(text);
  if (reply.clock !== null) {
    assert.equal(clock, reply.clock, "Relay-Clock is the server's clock");
  } else {
    assert.ok(Math.abs(clock - unixNow()) <= 5, `Relay-Clock ${clock} near ${unixNow()}`);
  }
  return clock;
}

/** Asserts a JSON reply: status, exact body bytes, Content-Type. */
export function assertJson(reply: Reply, status: number, body: string): void {
  assert.deepEqual({ status: reply.status, body: reply.body }, { status, body });
  assert.equal(reply.headers.get("Content-Type"), "application/json");
  relayClock(reply);
}

/** Asserts an empty reply: status, no body, no Content-Type. */
export function assertEmpty(reply: Reply, status: number): void {
  assert.deepEqual({ status: reply.status, body: reply.body }, { status, body: "" });
  assert.equal(reply.headers.get("Content-Type"), null);
  relayClock(reply);
}

/** The exact body of a 201. */
export function createdBody(
  licenseFile: string | Uint8Array,
  key: string,
  clock: number,
  ttl: number,
): string {
  const bytes = typeof licenseFile === "string"
    ? new TextEncoder().encode(licenseFile)
    : licenseFile;
  return `{"license_file":"${bytes.toBase64()}","license_key":"${key}",` +
    `"expires_at":${clock + ttl},"expires_in":${ttl}}\n`;
}

/** The exact body of a 202. */
export function extendedBody(clock: number, ttl: number): string {
  return `{"expires_at":${clock + ttl},"expires_in":${ttl}}\n`;
}

/** HMAC-SHA256(secret, message) as lowercase hex, computed here with WebCrypto. */
export async function hmacHex(secret: string, message: string): Promise<string> {
  const utf8 = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    utf8.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8.encode(message))).toHex();
}

/**
 * Asserts that a reply is signed with `secret`: `t` equals `Relay-Clock`, the
 * MAC matches an independent HMAC, `verifySignature` accepts it, and rejects
 * it under a wrong secret or with another body.
 */
export async function assertSigned(reply: Reply, secret: string): Promise<void> {
  const header = reply.headers.get("Relay-Signature");
  assert.ok(header !== null, `Relay-Signature on a ${reply.status}`);
  const match = /^t=(\d+),v1=([0-9a-f]{64}),v2=([0-9a-f]{64})$/.exec(header);
  assert.ok(match, `Relay-Signature format: ${header}`);
  const clock = relayClock(reply);
  assert.equal(Number(match[1]), clock, "t equals Relay-Clock");
  assert.equal(match[2], await hmacHex(secret, `${clock}.${reply.body}`));
  const { method, path } = reply.request;
  assert.equal(
    match[3],
    await hmacHex(secret, `${clock}.${method}.${path}.${reply.status}.${reply.body}`),
  );
  // The receiver's clock: the one the server ran on.
  const now = reply.clock ?? unixNow();
  const request = { ...reply.request, status: reply.status };
  for (const bound of [undefined, request]) {
    const options = { secret, now, request: bound };
    assert.equal(await verifySignature(header, reply.body, options), true);
    assert.equal(
      await verifySignature(header, reply.body, { ...options, secret: `${secret}x` }),
      false,
    );
    assert.equal(await verifySignature(header, `${reply.body} `, options), false);
  }
  // v2 refuses the same answer presented for another request or status.
  for (
    const other of [
      { ...request, path: `${path}x` },
      { ...request, method: method === "PUT" ? "DELETE" : "PUT" },
      { ...request, status: reply.status + 1 },
    ]
  ) {
    assert.equal(await verifySignature(header, reply.body, { secret, now, request: other }), false);
  }
}

/** A port that was free a moment ago (listened on with port 0, then closed). */
export function freePort(hostname = "127.0.0.1"): number {
  const listener = Deno.listen({ hostname, port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Parsed JSON log lines with `msg` equal to `msg`. */
export function logLines(lines: readonly string[], msg: string): Record<string, unknown>[] {
  return lines.map((line) => JSON.parse(line)).filter((entry) => entry.msg === msg);
}

/** Runs `relay ...args` to completion (see `runCli`). */
export const runRelay = runCli;

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A throwaway certificate authority and a server certificate it signed for
 * 127.0.0.1 and localhost, made with openssl. TLS clients trust the CA; the
 * server presents the leaf. Returns the paths of the PEM files.
 */
export async function makeCertificates(
  dir: string,
): Promise<{ ca: string; cert: string; key: string }> {
  const openssl = async (...args: string[]) => {
    const { code, stderr } = await new Deno.Command("openssl", {
      args,
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=Relay test CA",
  );
  await openssl("req", ...ec, "-keyout", "key.pem", "-out", "server.csr", "-subj", "/CN=localhost");
  await Deno.writeTextFile(
    `${dir}/server.ext`,
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  await openssl(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "cert.pem",
    "-days",
    "2",
    "-extfile",
    "server.ext",
  );
  return { ca: `${dir}/ca.pem`, cert: `${dir}/cert.pem`, key: `${dir}/key.pem` };
}
