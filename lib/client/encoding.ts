/**
 * Hex and base64 for the client, written out because Node.js 20 has neither
 * `Uint8Array.fromHex` nor `Uint8Array.fromBase64`/`toBase64` (and `atob`
 * accepts sloppy input). Strict: anything that is not canonical throws a
 * `SyntaxError`.
 *
 * @module
 */

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/** Bytes of a hex string (either case); throws SyntaxError on odd length or a non-hex digit. */
export function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) {
    throw new SyntaxError("Not a hex string");
  }
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const VALUES = new Map([...ALPHABET].map((char, i) => [char, i]));

/**
 * Bytes of standard base64 (padding optional, ASCII whitespace skipped, as
 * `Uint8Array.fromBase64` does); throws SyntaxError otherwise.
 */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const clean = text.replace(/[\t\n\f\r ]/g, "");
  const body = clean.replace(/={1,2}$/, "");
  if (
    body.length % 4 === 1 || (clean.length !== body.length && clean.length % 4 !== 0)
  ) {
    throw new SyntaxError("Not a base64 string");
  }
  const bytes = new Uint8Array(Math.floor((body.length * 3) / 4));
  let bits = 0;
  let buffer = 0;
  let at = 0;
  for (const char of body) {
    const value = VALUES.get(char);
    if (value === undefined) throw new SyntaxError("Not a base64 string");
    buffer = ((buffer << 6) | value) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes[at++] = (buffer >> bits) & 0xff;
    }
  }
  return bytes;
}

/** Standard base64 of `bytes`, padded. */
export function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const [a, b = 0, c = 0] = [bytes[i], bytes[i + 1], bytes[i + 2]];
    const n = (a << 16) | (b << 8) | c;
    text += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] +
      (i + 1 < bytes.length ? ALPHABET[(n >> 6) & 63] : "=") +
      (i + 2 < bytes.length ? ALPHABET[n & 63] : "=");
  }
  return text;
}
