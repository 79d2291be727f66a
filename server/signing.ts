/**
 * Response signatures: `Relay-Clock` on every response and, with a signing
 * secret, `Relay-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
 * the reference Relay's scheme. Also the verification an application does,
 * with a constant-time comparison, used by the tests and shown in the README.
 *
 * @module
 */

const utf8 = new TextEncoder();

/** Signs response bodies with one secret; the key is imported once. */
export interface Signer {
  /** The `Relay-Signature` header value for `body` sent at unix second `t`. */
  sign(t: number, body: string): Promise<string>;
}

/** A {@link Signer} for `secret`. */
export async function createSigner(secret: string): Promise<Signer> {
  const key = await importHmacKey(secret, "sign");
  return {
    async sign(t, body) {
      const mac = await crypto.subtle.sign("HMAC", key, utf8.encode(`${t}.${body}`));
      return `t=${t},v1=${new Uint8Array(mac).toHex()}`;
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
}

/**
 * Checks a `Relay-Signature` header against the raw response body, as an
 * application should: unknown parts are ignored (no downgrade), `t` must be
 * within the tolerance of the receiver's clock, and the MAC is compared in
 * constant time (`crypto.subtle.verify`).
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
  const v1 = parts.get("v1");
  if (!Number.isInteger(t) || !v1 || !/^[0-9a-f]{64}$/i.test(v1)) return false;
  if (Math.abs(options.now - t) > (options.toleranceSeconds ?? 300)) return false;
  const key = await importHmacKey(options.secret, "verify");
  return await crypto.subtle.verify(
    "HMAC",
    key,
    Uint8Array.fromHex(v1),
    utf8.encode(`${t}.${body}`),
  );
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
