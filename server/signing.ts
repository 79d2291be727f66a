/**
 * Response signatures: `Relay-Clock` on every response and, with a signing
 * secret, `Relay-Signature: t=<unix s>,v1=<hex>,v2=<hex>`:
 *
 * - `v1 = HMAC-SHA256(secret, "<t>.<body>")`, the reference Relay's scheme,
 *   unchanged;
 * - `v2 = HMAC-SHA256(secret, "<t>.<METHOD>.<path>.<status>.<body>")`, ours:
 *   it binds the answer to the request, so a captured signed `201` cannot be
 *   replayed as the answer to another node's request (or another method, or
 *   with another status).
 *
 * Also the verification an application does, with a constant-time
 * comparison, used by the tests and shown in the README.
 *
 * @module
 */

const utf8 = new TextEncoder();

/** What a response answers: `v2` signs it along with the body. */
export interface SignedRequest {
  /** The request method, upper case: `PUT`. */
  method: string;
  /**
   * The request path as Relay routed it: percent-encoded as sent, dot segments
   * resolved, without the query (`/v1/nodes/node-1`).
   */
  path: string;
  /** The response status. */
  status: number;
}

/** Signs response bodies with one secret; the key is imported once. */
export interface Signer {
  /** The `Relay-Signature` header value for `body`, answering `request`, sent at unix second `t`. */
  sign(t: number, body: string, request: SignedRequest): Promise<string>;
}

/** The bytes `v1` signs. */
export function v1Message(t: number, body: string): string {
  return `${t}.${body}`;
}

/** The bytes `v2` signs. */
export function v2Message(t: number, body: string, request: SignedRequest): string {
  return `${t}.${request.method}.${request.path}.${request.status}.${body}`;
}

/** A {@link Signer} for `secret`. */
export async function createSigner(secret: string): Promise<Signer> {
  const key = await importHmacKey(secret, "sign");
  const mac = async (message: string) =>
    new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8.encode(message))).toHex();
  return {
    async sign(t, body, request) {
      const [v1, v2] = await Promise.all([
        mac(v1Message(t, body)),
        mac(v2Message(t, body, request)),
      ]);
      return `t=${t},v1=${v1},v2=${v2}`;
    },
  };
}

/** Options of {@link verifySignature}. */
export interface VerifyOptions {
  /** The shared signing secret. */
  secret: string;
  /** The receiver's current unix time in seconds. */
  now: number;
  /** How far `t` may be from `now`, in seconds (default 300). */
  toleranceSeconds?: number;
  /**
   * The request the response answers: `v2` is checked when the header has
   * it (a header without `v2` is then refused: no downgrade to `v1`).
   * Without it only `v1` is checked.
   */
  request?: SignedRequest;
}

/**
 * Checks a `Relay-Signature` header against the raw response body, as an
 * application should: unknown parts are ignored, `t` must be within the
 * tolerance of the receiver's clock, and the MAC is compared in constant time
 * (`crypto.subtle.verify`).
 */
export async function verifySignature(
  header: string | null,
  body: string,
  options: VerifyOptions,
): Promise<boolean> {
  if (!header) return false;
  const parts = new Map<string, string>();
  for (const part of header.split(",")) {
    const index = part.indexOf("=");
    if (index > 0) parts.set(part.slice(0, index).trim(), part.slice(index + 1).trim());
  }
  const t = Number(parts.get("t"));
  const [mac, message] = options.request
    ? [parts.get("v2"), v2Message(t, body, options.request)]
    : [parts.get("v1"), v1Message(t, body)];
  if (!Number.isInteger(t) || !mac || !/^[0-9a-f]{64}$/i.test(mac)) return false;
  if (Math.abs(options.now - t) > (options.toleranceSeconds ?? 300)) return false;
  const key = await importHmacKey(options.secret, "verify");
  return await crypto.subtle.verify("HMAC", key, Uint8Array.fromHex(mac), utf8.encode(message));
}

function importHmacKey(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    utf8.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    [usage],
  );
}
