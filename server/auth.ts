/**
 * Client authentication (`--auth-token-file`): bearer tokens that every
 * request to the lease routes must carry. Tokens are compared as SHA-256
 * digests, against every token, without stopping at a match, so the time an
 * answer takes says nothing about how much of a token was right. Tokens are
 * never logged.
 *
 * @module
 */

import { UsageError } from "../lib/errors.ts";

const utf8 = new TextEncoder();

/** RFC 6750's `b64token`: what a bearer token may be made of. */
const TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * The tokens of a token file: one per line; blank lines and lines starting
 * with `#` are skipped, surrounding whitespace is dropped.
 *
 * @throws {UsageError} a line is not a bearer token (it names the line, never
 *   the text), or the file holds no token.
 */
export function parseTokenFile(text: string, name: string): string[] {
  const tokens: string[] = [];
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (!TOKEN.test(line)) {
      throw new UsageError(
        `Auth token file "${name}", line ${index + 1}: not a bearer token ` +
          "(letters, digits and - . _ ~ + / only, then any = signs)",
      );
    }
    tokens.push(line);
  }
  if (tokens.length === 0) throw new UsageError(`Auth token file "${name}" holds no token`);
  return tokens;
}

/** Checks `Authorization` headers against the current tokens. */
export interface Authenticator {
  /** Whether the header is `Bearer <one of the tokens>`. */
  check(authorization: string | null): Promise<boolean>;
  /** Replaces the tokens (a reload of the file). */
  replace(tokens: readonly string[]): Promise<void>;
  /** How many tokens are accepted. */
  readonly size: number;
}

/** An {@link Authenticator} accepting `tokens`. */
export async function createAuthenticator(tokens: readonly string[]): Promise<Authenticator> {
  let digests = await Promise.all(tokens.map(digest));
  return {
    async check(authorization) {
      const match = /^Bearer +(\S+) *$/i.exec(authorization ?? "");
      // Hash even a malformed header, so it takes as long as a wrong token.
      const presented = await digest(match?.[1] ?? "");
      let found = 0;
      for (const known of digests) found |= equalBytes(presented, known);
      return match !== null && found === 1;
    },
    async replace(next) {
      digests = await Promise.all(next.map(digest));
    },
    get size() {
      return digests.length;
    },
  };
}

async function digest(token: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", utf8.encode(token)));
}

/** 1 when equal, else 0, in time that depends only on the length (32 bytes here). */
function equalBytes(a: Uint8Array, b: Uint8Array): number {
  let difference = a.length ^ b.length;
  for (let i = 0; i < a.length && i < b.length; i++) difference |= a[i] ^ b[i];
  return difference === 0 ? 1 : 0;
}
