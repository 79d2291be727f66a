/**
 * Checks a `Relay-Signature` header as Relay's README ("Signatures")
 * describes: `t=<unix s>,v1=<hex>,v2=<hex>`, where
 * `v1 = HMAC-SHA256(secret, "<t>.<body>")` and
 * `v2 = HMAC-SHA256(secret, "<t>.<METHOD>.<path>.<status>.<body>")`.
 *
 * `v2` is checked when the header has it. A header without `v2` is refused
 * unless `allowV1` (a Keygen Relay, which signs `v1` only): Relay always sends
 * `v2`, so a header without it is a `v2` stripped to replay another
 * request's answer.
 *
 * @module
 */

import { fromHex } from "./encoding.ts";

const utf8 = new TextEncoder();

/** The request an answer is bound to by `v2`. */
export interface SignedRequest {
  /** Upper case: `PUT`. */
  method: string;
  /** The path as sent, percent-encoded, without the query: `/v1/nodes/node-1`. */
  path: string;
  /** The answer's status. */
  status: number;
}

/** Options of {@link verifyRelaySignature}. */
export interface SignatureCheck {
  /** The HMAC key, imported once with {@link importSigningSecret}. */
  key: CryptoKey;
  /** The receiver's clock, unix seconds. */
  now: number;
  /** How far `t` may be from `now`, in seconds. */
  toleranceSeconds: number;
  /** Accept a header with `v1` only (Keygen Relay); default false. */
  allowV1?: boolean;
}

/** Imports the shared signing secret as an HMAC-SHA256 verification key. */
export function importSigningSecret(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    utf8.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
}

/**
 * Why `header` does not sign `body` as the answer to `request`, or null when
 * it does. The MAC is compared in constant time (`crypto.subtle.verify`).
 */
export async function signatureProblem(
  header: string | null,
  body: string,
  request: SignedRequest,
  check: SignatureCheck,
): Promise<string | null> {
  if (header === null) return "the answer is not signed (no Relay-Signature header)";
  const parts = new Map<string, string>();
  for (const part of header.split(",")) {
    const index = part.indexOf("=");
    if (index > 0) parts.set(part.slice(0, index).trim(), part.slice(index + 1).trim());
  }
  const t = Number(parts.get("t"));
  if (!/^\d+$/.test(parts.get("t") ?? "") || !Number.isSafeInteger(t)) {
    return "its Relay-Signature has no valid t";
  }
  if (Math.abs(check.now - t) > check.toleranceSeconds) {
    return `its Relay-Signature is from ${t}, more than ${check.toleranceSeconds} s ` +
      `away from this machine's clock (${check.now})`;
  }
  const v2 = parts.get("v2");
  const v1 = parts.get("v1");
  let mac: string;
  let message: string;
  if (v2 !== undefined) {
    [mac, message] = [v2, `${t}.${request.method}.${request.path}.${request.status}.${body}`];
  } else if (check.allowV1 && v1 !== undefined) {
    [mac, message] = [v1, `${t}.${body}`];
  } else {
    return "its Relay-Signature has no v2";
  }
  if (!/^[0-9a-f]{64}$/i.test(mac)) return "its Relay-Signature MAC is not 64 hex digits";
  const valid = await crypto.subtle.verify("HMAC", check.key, fromHex(mac), utf8.encode(message));
  return valid ? null : `its Relay-Signature does not match ${request.method} ${request.path}`;
}
