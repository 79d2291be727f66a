/**
 * Deterministic mutation fuzzer over license files.
 *
 * Seeds are the two real Keygen files and minted files of every algorithm.
 * Each case stacks 1–3 mutations (chosen by a seeded mulberry32 PRNG) and
 * asks `verifyLicenseFile()` about the result. The expected outcome comes
 * from an oracle: a case must verify exactly when its key and public key are
 * the seed's and its certificate still decodes to the seed's `enc`, `alg`
 * and signature bytes (a re-wrap, CRLF or extra whitespace does; a flipped
 * bit of `enc` does not, nor one of `sig` unless it only lands in base64
 * padding bits), and the clock is the seed's. Every refusal must be a
 * `RelayError` with a license-file code, never another exception and never a
 * hang, and its message must not hold the license key. A mutation applied
 * alone must also give its own code (a flipped `enc` bit: not genuine).
 *
 * The PRNG's choices are reproducible from the seed in the test name
 * (override with RELAY_FUZZ_SEED, and the count with RELAY_FUZZ_CASES);
 * minted files and key pairs are random per run, so a failure prints the
 * mutated certificate too.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type ErrorCode, RelayError } from "../../lib/errors.ts";
import {
  importPublicKey,
  LICENSE_FILE_ALGORITHMS,
  type LicenseFileAlgorithm,
  parseCertificate,
  type PublicKey,
  verifyLicenseFile,
} from "../../lib/license_file.ts";
import { addLicenses, type LicenseInput, verifyLicenses } from "../../lib/licenses.ts";
import { openStore } from "../../lib/storage/open.ts";
import { unixSeconds } from "../../lib/time.ts";
import { generateKeyPair, type KeyPair, mintLicenseFile } from "../../scripts/mint.ts";
import { KEYGEN, prng, query, tempDir } from "../helpers.ts";

const DEFAULT_SEED = 0x5eed_1ce5;
const SEED = Number(Deno.env.get("RELAY_FUZZ_SEED") ?? DEFAULT_SEED) >>> 0;
const SEED_TEXT = `0x${SEED.toString(16)}`;
const CASES = Number(Deno.env.get("RELAY_FUZZ_CASES") ?? 12_000);
/** A single verification taking longer than this counts as a hang. */
const HANG_MS = 10_000;

/** Everything is checked at the real files' moment; minted files were issued a day before. */
const NOW = KEYGEN.validAt;
const ISSUED = new Date(NOW.getTime() - 86_400_000);

const HEADER = "-----BEGIN LICENSE FILE-----";
const FOOTER = "-----END LICENSE FILE-----";
const BASE64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const LICENSE_FILE_CODES: readonly ErrorCode[] = [
  "license_file_malformed",
  "license_file_not_genuine",
  "license_key_wrong",
  "license_file_expired",
  "license_file_issued_in_future",
  "license_file_algorithm_unsupported",
];

const utf8 = new TextEncoder();
const lossyUtf8 = new TextDecoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

// PRNG

class Rng {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = prng(seed);
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.#next() * n);
  }
  /** An integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }
  chance(p: number): boolean {
    return this.#next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  base64(length: number): string {
    let text = "";
    for (let i = 0; i < length; i++) text += this.pick([...BASE64_CHARS]);
    return text;
  }
  bytes(length: number): Uint8Array<ArrayBuffer> {
    return Uint8Array.from({ length }, () => this.int(256));
  }
}

// Seeds

/** A certificate as lines: what the framing mutations work on. */
interface Frame {
  prefix: string;
  header: string;
  lines: string[];
  footer: string;
  eol: string;
  suffix: string;
}

type Family = "keygen" | "ed25519" | "rsa";

interface Seed {
  name: string;
  family: Family;
  id: string;
  key: string;
  algorithm: LicenseFileAlgorithm;
  publicKey: PublicKey;
  bytes: Uint8Array<ArrayBuffer>;
  fields: { enc: string; sig: string; alg: string };
  json: Uint8Array<ArrayBuffer>;
  frame: Frame;
}

function renderFrame(frame: Frame): Uint8Array<ArrayBuffer> {
  const lines = [frame.header, ...frame.lines, frame.footer].filter((line, i, all) =>
    // A stripped header or footer leaves no line behind.
    !((i === 0 || i === all.length - 1) && line === "")
  );
  return utf8.encode(frame.prefix + lines.join(frame.eol) + frame.suffix);
}

function frameOfJson(json: Uint8Array): Frame {
  return {
    prefix: "",
    header: HEADER,
    lines: wrap(json.toBase64(), 60),
    footer: FOOTER,
    eol: "\n",
    suffix: "\n",
  };
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += width) lines.push(text.slice(i, i + width));
  return lines;
}

/** Splits a certificate as Keygen writes it into a {@link Frame} that renders it back exactly. */
function frameOfCertificate(text: string): Frame {
  const lines = text.split("\n");
  const footerAt = lines.lastIndexOf(FOOTER);
  assert.equal(lines[0], HEADER);
  assert.ok(footerAt > 0);
  return {
    prefix: "",
    header: HEADER,
    lines: lines.slice(1, footerAt),
    footer: FOOTER,
    eol: "\n",
    suffix: "\n" + lines.slice(footerAt + 1).join("\n"),
  };
}

/**
 * The oracle's own reading of a certificate: trimmed, framed by the exact
 * header and footer, a base64 body of UTF-8 JSON holding an object. Returns
 * null where a Keygen license file reader must refuse the framing.
 */
function oracleFields(bytes: Uint8Array): Record<string, unknown> | null {
  const text = lossyUtf8.decode(bytes).trim();
  if (text.length < HEADER.length + FOOTER.length) return null;
  if (!text.startsWith(HEADER) || !text.endsWith(FOOTER)) return null;
  const body = text.slice(HEADER.length, text.length - FOOTER.length);
  try {
    const value = JSON.parse(strictUtf8.decode(Uint8Array.fromBase64(body)));
    return typeof value === "object" && value !== null && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

function decodeOrNull(text: unknown): Uint8Array | null {
  if (typeof text !== "string") return null;
  try {
    return Uint8Array.fromBase64(text);
  } catch {
    return null;
  }
}

function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  return a !== null && b !== null && a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/**
 * Whether the certificate carries exactly the seed's signed content: the same
 * `enc` and `alg` strings (the signature covers `enc` as text) and a `sig`
 * that decodes to the same signature bytes.
 */
function sameSignedContent(bytes: Uint8Array, seed: Seed): boolean {
  const fields = oracleFields(bytes);
  return fields !== null && fields.enc === seed.fields.enc && fields.alg === seed.fields.alg &&
    sameBytes(decodeOrNull(fields.sig), decodeOrNull(seed.fields.sig));
}

// Cases and mutations

interface Case {
  seed: Seed;
  fields: Record<string, unknown>;
  json: Uint8Array<ArrayBuffer>;
  frame: Frame;
  bytes: Uint8Array<ArrayBuffer>;
  key: string;
  publicKey: PublicKey;
  now: Date;
}

/** 0 inputs, 1 certificate fields, 2 JSON text, 3 framing, 4 certificate bytes. */
type Stage = 0 | 1 | 2 | 3 | 4;

interface Context {
  rng: Rng;
  seeds: readonly Seed[];
  otherKeys: Record<Family, PublicKey>;
  otherKindKeys: Record<Family, PublicKey>;
}

interface Mutation {
  kind: string;
  stage: Stage;
  /**
   * Mutates the case at its stage. Returns the code a refusal must have when
   * this is the case's only mutation, or undefined when any license-file code
   * will do. "accept" means the mutation must never make the file refused.
   */
  apply(c: Case, ctx: Context): ErrorCode | "accept" | undefined;
}

function otherSeed(c: Case, ctx: Context): Seed {
  const others = ctx.seeds.filter((seed) => seed !== c.seed);
  return ctx.rng.pick(others);
}

/** `value` as a string to mutate: a previous mutation may have replaced it. */
function asText(value: unknown, rng: Rng): string {
  return typeof value === "string" && value !== "" ? value : rng.base64(rng.range(4, 40));
}

function flipCharBit(text: string, rng: Rng): string {
  const i = rng.int(text.length);
  const code = text.charCodeAt(i) ^ (1 << rng.int(7));
  return text.slice(0, i) + String.fromCharCode(code) + text.slice(i + 1);
}

function flipBit(bytes: Uint8Array<ArrayBuffer>, rng: Rng): Uint8Array<ArrayBuffer> {
  const copy = bytes.slice();
  if (copy.length > 0) copy[rng.int(copy.length)] ^= 1 << rng.int(8);
  return copy;
}

function replaceByte(bytes: Uint8Array<ArrayBuffer>, rng: Rng): Uint8Array<ArrayBuffer> {
  const copy = bytes.slice();
  if (copy.length === 0) return copy;
  const i = rng.int(copy.length);
  copy[i] = (copy[i] + rng.range(1, 255)) & 0xff;
  return copy;
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function bodyOf(frame: Frame): string {
  return frame.lines.join("").replace(/\s/g, "");
}

function setBody(frame: Frame, body: string, width = 60): void {
  frame.lines = wrap(body, width);
}

function fieldMutation(
  kind: string,
  field: "enc" | "sig",
  change: (text: string, rng: Rng) => string,
): Mutation {
  return {
    kind,
    stage: 1,
    apply(c, ctx) {
      const changed = change(asText(c.fields[field], ctx.rng), ctx.rng);
      c.fields[field] = changed;
      // The signature covers enc; a sig that is no longer the signature fails too.
      return changed === "" ? "license_file_malformed" : "license_file_not_genuine";
    },
  };
}

function truncateText(text: string, rng: Rng): string {
  return text.slice(0, rng.int(text.length));
}

function extendText(text: string, rng: Rng): string {
  return text + rng.base64(rng.range(1, 12));
}

/** Another supported alg, and the code it must be refused with. */
function otherSupportedAlg(
  alg: LicenseFileAlgorithm,
  rng: Rng,
): [LicenseFileAlgorithm, ErrorCode] {
  const other = rng.pick(LICENSE_FILE_ALGORITHMS.filter((known) => known !== alg));
  const scheme = (a: string) => a.slice(a.indexOf("+") + 1);
  // Another signature scheme: the signature fails. The same scheme, the other
  // encoding: the signature holds, but enc cannot be read that way.
  const code = scheme(other) === scheme(alg)
    ? "license_file_malformed"
    : "license_file_not_genuine";
  return [other, code];
}

const UNKNOWN_ALGS = [
  "aes-256-cbc+ed25519",
  "base64+ecdsa-p256",
  "ED25519",
  "AES-256-GCM+ED25519",
  "aes-256-gcm+ed25519 ",
  " base64+ed25519",
  "aes-256-gcm+rsa-pss-sha512",
  "aes-256-gcm",
  "ed25519",
  "none",
  "__proto__",
  "constructor",
  "toString",
];

const NON_STRINGS: unknown[] = [42, 0, -1.5, null, true, false, {}, [], ["aes-256-gcm+ed25519"], {
  name: "aes-256-gcm+ed25519",
}];

const EXTRA_FIELD_NAMES = [
  "kid",
  "ttl",
  "meta",
  "iss",
  "v",
  "__proto__",
  "constructor",
  "toString",
];

/** How often frame.base64url met a body with "+" or "/" (after a JSON mutation). */
let base64urlBit = 0;

const MUTATIONS: readonly Mutation[] = [
  // Stage 0: the license key, the public key and the clock.
  {
    kind: "key.wrong",
    stage: 0,
    apply(c, { rng }) {
      c.key = rng.base64(30).toUpperCase().replace(/[^A-Z0-9]/g, "7").match(/.{6}/g)!.join("-") +
        "-V3";
      return "license_key_wrong";
    },
  },
  {
    kind: "key.empty",
    stage: 0,
    apply(c) {
      c.key = "";
      return "license_key_wrong";
    },
  },
  {
    kind: "key.other-file",
    stage: 0,
    apply(c, ctx) {
      c.key = otherSeed(c, ctx).key;
      return "license_key_wrong";
    },
  },
  {
    kind: "key.trailing-space",
    stage: 0,
    apply(c) {
      c.key += " ";
      return "license_key_wrong";
    },
  },
  {
    kind: "clock.after-expiry",
    stage: 0,
    apply(c, { rng }) {
      // Every seed's file expires by 2026-01-19.
      c.now = new Date(Date.UTC(2026, rng.range(1, 11), rng.range(1, 28)));
      return "license_file_expired";
    },
  },
  {
    kind: "clock.before-issue",
    stage: 0,
    apply(c, { rng }) {
      // Every seed was issued on or after 2025-12-05, and the drift allowed is 5 minutes.
      c.now = new Date(Date.UTC(2025, rng.range(0, 10), rng.range(1, 28)));
      return "license_file_issued_in_future";
    },
  },
  {
    kind: "public-key.other-pair",
    stage: 0,
    apply(c, ctx) {
      c.publicKey = ctx.otherKeys[c.seed.family];
      return "license_file_not_genuine";
    },
  },
  {
    kind: "public-key.other-kind",
    stage: 0,
    apply(c, ctx) {
      c.publicKey = ctx.otherKindKeys[c.seed.family];
      return "license_file_not_genuine";
    },
  },

  // Stage 1: the certificate's fields.
  fieldMutation("enc.flip-bit", "enc", flipCharBit),
  fieldMutation("sig.flip-bit", "sig", flipCharBit),
  fieldMutation("enc.truncate", "enc", truncateText),
  fieldMutation("sig.truncate", "sig", truncateText),
  fieldMutation("enc.extend", "enc", extendText),
  fieldMutation("sig.extend", "sig", extendText),
  {
    kind: "swap.enc-other-file",
    stage: 1,
    apply(c, ctx) {
      c.fields.enc = otherSeed(c, ctx).fields.enc;
      return "license_file_not_genuine";
    },
  },
  {
    kind: "swap.sig-other-file",
    stage: 1,
    apply(c, ctx) {
      c.fields.sig = otherSeed(c, ctx).fields.sig;
      return "license_file_not_genuine";
    },
  },
  {
    kind: "swap.alg-other-file",
    stage: 1,
    apply(c, ctx) {
      // Possibly the same alg: the oracle then expects the file to verify.
      c.fields.alg = otherSeed(c, ctx).fields.alg;
      return undefined;
    },
  },
  {
    kind: "swap.inside-file",
    stage: 1,
    apply(c, { rng }) {
      const [a, b] = rng.pick([["enc", "sig"], ["sig", "alg"], ["enc", "alg"]] as const);
      [c.fields[a], c.fields[b]] = [c.fields[b], c.fields[a]];
      return a === "enc" && b === "sig"
        ? "license_file_not_genuine"
        : "license_file_algorithm_unsupported";
    },
  },
  {
    kind: "alg.other-supported",
    stage: 1,
    apply(c, { rng }) {
      const [alg, code] = otherSupportedAlg(c.seed.algorithm, rng);
      c.fields.alg = alg;
      return code;
    },
  },
  {
    kind: "alg.unknown",
    stage: 1,
    apply(c, { rng }) {
      c.fields.alg = rng.chance(0.2) ? rng.base64(rng.range(1, 30)) : rng.pick(UNKNOWN_ALGS);
      return "license_file_algorithm_unsupported";
    },
  },
  {
    kind: "alg.empty",
    stage: 1,
    apply(c) {
      c.fields.alg = "";
      return "license_file_malformed";
    },
  },
  {
    kind: "alg.non-string",
    stage: 1,
    apply(c, { rng }) {
      c.fields.alg = structuredClone(rng.pick(NON_STRINGS));
      return "license_file_malformed";
    },
  },
  {
    kind: "json.remove-field",
    stage: 1,
    apply(c, { rng }) {
      delete c.fields[rng.pick(["enc", "sig", "alg"])];
      return "license_file_malformed";
    },
  },
  {
    kind: "json.add-field",
    stage: 1,
    apply(c, { rng }) {
      const name = rng.chance(0.2) ? rng.base64(rng.range(1, 8)) : rng.pick(EXTRA_FIELD_NAMES);
      const value = rng.pick<unknown>([
        rng.base64(rng.range(0, 20)),
        // "?", ">" and "~" make "+" and "/" appear in the base64 body.
        [..."?>~?>~"].map(() => rng.pick([..."?>~ab"])).join("").repeat(rng.range(1, 4)),
        rng.int(1000),
        null,
        { enc: rng.base64(8), sig: rng.base64(8), alg: "base64+ed25519" },
        [1, "two", null],
      ]);
      // defineProperty: `fields.__proto__ = …` would set the prototype, not a field.
      Object.defineProperty(c.fields, name, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      // Unknown fields are ignored, as Keygen's SDK ignores them: the signed content is unchanged.
      return "accept";
    },
  },

  // Stage 2: the JSON text.
  {
    kind: "json.flip-bit",
    stage: 2,
    apply(c, { rng }) {
      c.json = flipBit(c.json, rng);
      return undefined;
    },
  },
  {
    kind: "json.flip-byte",
    stage: 2,
    apply(c, { rng }) {
      c.json = replaceByte(c.json, rng);
      return undefined;
    },
  },
  {
    kind: "json.duplicate-key",
    stage: 2,
    apply(c, ctx) {
      const { rng } = ctx;
      const name = rng.pick(["enc", "sig", "alg"]);
      const value = rng.chance(0.5)
        ? otherSeed(c, ctx).fields[name as "enc" | "sig" | "alg"]
        : rng.base64(rng.range(1, 40));
      const member = utf8.encode(`${JSON.stringify(name)}:${JSON.stringify(value)}`);
      const text = c.json;
      if (rng.chance(0.5)) {
        // First: the original member, later in the text, wins (JSON.parse and Go keep the last).
        const at = text.indexOf(0x7b) + 1;
        c.json = concat(text.subarray(0, at), member, utf8.encode(","), text.subarray(at));
      } else {
        // Last: the duplicate wins.
        const at = text.lastIndexOf(0x7d);
        const cut = at < 0 ? text.length : at;
        c.json = concat(text.subarray(0, cut), utf8.encode(","), member, text.subarray(cut));
      }
      return undefined;
    },
  },
  {
    kind: "json.wrap-in-array",
    stage: 2,
    apply(c) {
      c.json = concat(utf8.encode("["), c.json, utf8.encode("]"));
      return "license_file_malformed";
    },
  },
  {
    kind: "json.non-object",
    stage: 2,
    apply(c, { rng }) {
      const replacement = rng.pick([
        "42",
        "-0.5e3",
        '"a string"',
        JSON.stringify(lossyUtf8.decode(c.json)),
        "null",
        "true",
        "false",
        "[]",
        "{}",
        "",
        " ",
      ]);
      c.json = utf8.encode(replacement);
      return "license_file_malformed";
    },
  },

  // Stage 3: the framing.
  {
    kind: "frame.rewrap",
    stage: 3,
    apply(c, { rng }) {
      const body = bodyOf(c.frame);
      setBody(c.frame, body, rng.chance(0.1) ? body.length || 1 : rng.range(1, 200));
      return "accept";
    },
  },
  {
    kind: "frame.crlf",
    stage: 3,
    apply(c) {
      c.frame.eol = "\r\n";
      c.frame.suffix = c.frame.suffix.replaceAll("\n", "\r\n");
      return "accept";
    },
  },
  {
    kind: "frame.whitespace",
    stage: 3,
    apply(c, { rng }) {
      const space = () => rng.pick([" ", "\t", "\n", "\r\n", "  \t ", "\n\n"]);
      switch (rng.int(5)) {
        case 0:
          c.frame.prefix = space() + c.frame.prefix;
          break;
        case 1:
          c.frame.suffix += space();
          break;
        case 2: // blank or whitespace-only lines inside the body
          c.frame.lines.splice(rng.int(c.frame.lines.length + 1), 0, rng.pick(["", " ", "\t "]));
          break;
        case 3: // trailing whitespace on body lines
          c.frame.lines = c.frame.lines.map((line) => rng.chance(0.3) ? line + space() : line);
          break;
        default: // indented body lines
          c.frame.lines = c.frame.lines.map((line) => rng.chance(0.3) ? "  " + line : line);
      }
      return "accept";
    },
  },
  {
    kind: "frame.strip-header",
    stage: 3,
    apply(c) {
      c.frame.header = "";
      return "license_file_malformed";
    },
  },
  {
    kind: "frame.strip-footer",
    stage: 3,
    apply(c) {
      c.frame.footer = "";
      return "license_file_malformed";
    },
  },
  {
    kind: "frame.header-text",
    stage: 3,
    apply(c, { rng }) {
      if (rng.chance(0.5)) {
        c.frame.header = rng.pick([
          "-----BEGIN LICENSE FILE----",
          "----BEGIN LICENSE FILE-----",
          "-----BEGIN MACHINE FILE-----",
          "-----begin license file-----",
          "----- BEGIN LICENSE FILE-----",
          "-----BEGIN CERTIFICATE-----",
          "-----BEGIN LICENSE-FILE-----",
          "BEGIN LICENSE FILE",
        ]);
      } else {
        c.frame.footer = rng.pick([
          "-----END LICENSE FILE----",
          "-----END MACHINE FILE-----",
          "-----end license file-----",
          "-----END LICENSE FILE----- x",
          "-----END CERTIFICATE-----",
          "-----BEGIN LICENSE FILE-----",
          "END LICENSE FILE",
        ]);
      }
      return "license_file_malformed";
    },
  },
  {
    kind: "frame.base64url",
    stage: 3,
    apply(c, { rng }) {
      const body = bodyOf(c.frame);
      let url = body.replaceAll("+", "-").replaceAll("/", "_");
      if (rng.chance(0.5)) url = url.replace(/=+$/, "");
      setBody(c.frame, url);
      // The base64 of a Keygen certificate's JSON has no "+" or "/" (its bytes are
      // ASCII letters, digits and punctuation), so alone this changes at most the
      // padding, which the oracle judges; after a JSON mutation it can bite.
      if (!/[+/]/.test(body)) return undefined;
      base64urlBit++;
      return "license_file_malformed";
    },
  },
  {
    kind: "frame.double-encode",
    stage: 3,
    apply(c) {
      setBody(c.frame, utf8.encode(bodyOf(c.frame)).toBase64());
      return "license_file_malformed";
    },
  },
  {
    kind: "frame.truncate-body",
    stage: 3,
    apply(c, { rng }) {
      const body = bodyOf(c.frame);
      setBody(c.frame, body.slice(0, rng.int(body.length)));
      // Dropping only the "=" padding leaves the same bytes; the oracle then expects success.
      return "license_file_malformed";
    },
  },
  {
    kind: "frame.extend-body",
    stage: 3,
    apply(c, { rng }) {
      const body = bodyOf(c.frame);
      const at = rng.chance(0.5) ? body.length : rng.int(body.length + 1);
      const extra = rng.chance(0.8) ? rng.base64(rng.range(1, 16)) : "=".repeat(rng.range(1, 3));
      setBody(c.frame, body.slice(0, at) + extra + body.slice(at));
      return undefined;
    },
  },

  // Stage 4: the certificate bytes.
  {
    kind: "cert.flip-bit",
    stage: 4,
    apply(c, { rng }) {
      c.bytes = flipBit(c.bytes, rng);
      return undefined;
    },
  },
  {
    kind: "cert.flip-byte",
    stage: 4,
    apply(c, { rng }) {
      c.bytes = replaceByte(c.bytes, rng);
      return undefined;
    },
  },
  {
    kind: "cert.truncate",
    stage: 4,
    apply(c, { rng }) {
      c.bytes = c.bytes.slice(0, rng.int(c.bytes.length));
      // Cutting only the trailing newlines leaves the file intact; the oracle sees that.
      return "license_file_malformed";
    },
  },
  {
    kind: "cert.extend",
    stage: 4,
    apply(c, { rng }) {
      const extra = rng.chance(0.5)
        ? rng.bytes(rng.range(1, 16))
        : utf8.encode(rng.base64(rng.range(1, 16)));
      c.bytes = concat(c.bytes, extra);
      // Random bytes that happen to be whitespace only are trimmed; the oracle sees that.
      return "license_file_malformed";
    },
  },
];

/** Kinds that only touch whitespace or wrapping: alone, they must verify. */
const MUST_VERIFY_ALONE = new Set(["frame.rewrap", "frame.crlf", "frame.whitespace"]);

function newCase(seed: Seed): Case {
  return {
    seed,
    fields: { ...seed.fields },
    json: seed.json.slice(),
    frame: structuredClone(seed.frame),
    bytes: seed.bytes.slice(),
    key: seed.key,
    publicKey: seed.publicKey,
    now: NOW,
  };
}

/** Applies mutations in stage order, re-deriving each later stage from the changed one. */
function mutate(seed: Seed, mutations: readonly Mutation[], ctx: Context) {
  const c = newCase(seed);
  const sorted = [...mutations].sort((a, b) => a.stage - b.stage);
  const hints: (ErrorCode | "accept" | undefined)[] = [];
  let touched = 0;
  for (const mutation of sorted) {
    if (mutation.stage >= 2 && touched === 1) c.json = utf8.encode(JSON.stringify(c.fields));
    if (mutation.stage >= 3 && touched >= 1 && touched <= 2) c.frame = frameOfJson(c.json);
    if (mutation.stage >= 4 && touched >= 1 && touched <= 3) c.bytes = renderFrame(c.frame);
    if (mutation.stage > 0) touched = Math.max(touched, mutation.stage);
    hints.push(mutation.apply(c, ctx));
  }
  if (touched === 1) c.json = utf8.encode(JSON.stringify(c.fields));
  if (touched >= 1 && touched <= 2) c.frame = frameOfJson(c.json);
  if (touched >= 1 && touched <= 3) c.bytes = renderFrame(c.frame);
  return { c, hint: sorted.length === 1 ? hints[0] : undefined };
}

/** Rejects with a "hang" error when `promise` takes longer than `ms`. */
async function withinTime<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms (hang)`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every message in an error's cause chain. */
function messages(error: unknown): string[] {
  const out: string[] = [];
  for (let e = error, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) {
    out.push(e.message);
  }
  return out;
}

function count(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function table(map: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...map].sort(([a], [b]) => a.localeCompare(b)));
}

// Fixtures, made once

const keyPairs: Record<"ed25519" | "rsa", KeyPair> = {
  ed25519: await generateKeyPair("ed25519"),
  rsa: await generateKeyPair("rsa"),
};
const publicKeys = {
  keygen: await importPublicKey(KEYGEN.publicKey),
  ed25519: await importPublicKey(keyPairs.ed25519.publicKeyText),
  rsa: await importPublicKey(keyPairs.rsa.publicKeyText),
  otherEd25519: await importPublicKey((await generateKeyPair("ed25519")).publicKeyText),
  otherRsa: await importPublicKey((await generateKeyPair("rsa")).publicKeyText),
};

function familyOf(algorithm: LicenseFileAlgorithm): "ed25519" | "rsa" {
  return algorithm.endsWith("+ed25519") ? "ed25519" : "rsa";
}

function makeSeed(
  name: string,
  family: Family,
  id: string,
  key: string,
  bytes: Uint8Array<ArrayBuffer>,
): Seed {
  const fields = oracleFields(bytes);
  assert.ok(fields, `${name} is readable by the oracle`);
  const { enc, sig, alg } = fields as { enc: string; sig: string; alg: string };
  assert.deepEqual(parseCertificate(bytes), { enc, sig, alg });
  const text = lossyUtf8.decode(bytes);
  const frame = frameOfCertificate(text);
  assert.deepEqual(renderFrame(frame), bytes, `${name} renders back from its frame`);
  const json = Uint8Array.fromBase64(frame.lines.join(""));
  return {
    name,
    family,
    id,
    key,
    algorithm: alg as LicenseFileAlgorithm,
    publicKey: publicKeys[family],
    bytes,
    fields: { enc, sig, alg },
    json,
    frame,
  };
}

async function mintSeed(algorithm: LicenseFileAlgorithm, n: number): Promise<Seed> {
  const family = familyOf(algorithm);
  const minted = await mintLicenseFile(keyPairs[family], { algorithm, issued: ISSUED });
  return makeSeed(
    `minted ${algorithm} #${n}`,
    family,
    minted.id,
    minted.key,
    utf8.encode(minted.certificate),
  );
}

const SEEDS: Seed[] = [
  ...await Promise.all(
    KEYGEN.licenses.map(async (license) =>
      makeSeed(
        `keygen ${license.id}`,
        "keygen",
        license.id,
        license.key,
        await Deno.readFile(license.path),
      )
    ),
  ),
];
for (const algorithm of LICENSE_FILE_ALGORITHMS) {
  for (const n of [1, 2]) SEEDS.push(await mintSeed(algorithm, n));
}

const CONTEXT_KEYS = {
  otherKeys: {
    keygen: publicKeys.ed25519,
    ed25519: publicKeys.otherEd25519,
    rsa: publicKeys.otherRsa,
  },
  otherKindKeys: { keygen: publicKeys.rsa, ed25519: publicKeys.rsa, rsa: publicKeys.ed25519 },
};

/** Refused mutated files kept for the store test: verified with their seed's public key. */
interface RefusedFile {
  family: Family;
  bytes: Uint8Array<ArrayBuffer>;
  key: string;
  code: ErrorCode;
}

Deno.test("every fuzz seed verifies unmutated", async () => {
  assert.equal(SEEDS.length, 2 + 2 * LICENSE_FILE_ALGORITHMS.length);
  assert.deepEqual(
    new Set(SEEDS.map((seed) => seed.algorithm)),
    new Set(LICENSE_FILE_ALGORITHMS),
  );
  for (const seed of SEEDS) {
    const file = await verifyLicenseFile(seed.bytes, {
      publicKey: seed.publicKey,
      licenseKey: seed.key,
      now: unixSeconds(NOW),
    });
    assert.equal(file.id, seed.id, seed.name);
    // Re-deriving every stage from the parsed fields still verifies.
    const rebuilt = renderFrame(frameOfJson(utf8.encode(JSON.stringify(seed.fields))));
    assert.ok(sameSignedContent(rebuilt, seed));
    assert.equal(
      (await verifyLicenseFile(rebuilt, {
        publicKey: seed.publicKey,
        licenseKey: seed.key,
        now: unixSeconds(NOW),
      })).id,
      seed.id,
    );
  }
});

/** Runs the fuzz cases once per process; both fuzz tests share the result. */
function runFuzz() {
  return fuzzRun ??= fuzz();
}
let fuzzRun: ReturnType<typeof fuzz> | undefined;

async function fuzz() {
  const rng = new Rng(SEED);
  const ctx: Context = { rng, seeds: SEEDS, ...CONTEXT_KEYS };
  const perKind = new Map<string, number>();
  const perKindAlone = new Map<string, number>();
  const perCode = new Map<string, number>();
  const perKindCode = new Map<string, number>();
  const failures: string[] = [];
  const refusedFiles: RefusedFile[] = [];
  let accepted = 0;
  let benignByChance = 0;
  const started = performance.now();

  for (let n = 0; n < CASES; n++) {
    const seed = SEEDS[n % SEEDS.length];
    const mutations = Array.from({ length: rng.range(1, 3) }, () => rng.pick(MUTATIONS));
    const { c, hint } = mutate(seed, mutations, ctx);
    const kinds = mutations.map((m) => m.kind);
    for (const kind of kinds) count(perKind, kind);
    if (kinds.length === 1) count(perKindAlone, kinds[0]);

    const expectVerified = c.key === seed.key && c.publicKey === seed.publicKey &&
      c.now === NOW && sameSignedContent(c.bytes, seed);
    const input = rng.chance(0.5) ? c.bytes : lossyUtf8.decode(c.bytes);
    const describe = (problem: string) =>
      `case ${n} (seed ${SEED_TEXT}) of ${seed.name} with [${kinds.join(", ")}]: ${problem}\n` +
      `  key ${JSON.stringify(c.key)}, certificate (base64) ${c.bytes.toBase64()}`;

    let error: unknown;
    let ok = false;
    try {
      await withinTime(
        verifyLicenseFile(input, {
          publicKey: c.publicKey,
          licenseKey: c.key,
          now: unixSeconds(c.now),
        }),
        HANG_MS,
      );
      ok = true;
    } catch (caught) {
      error = caught;
    }

    if (hint === "accept" && !expectVerified) {
      failures.push(describe("the mutator broke a case that must verify (test bug)"));
    }
    if (kinds.length === 1 && MUST_VERIFY_ALONE.has(kinds[0]) && !ok) {
      failures.push(describe(`a whitespace-only change was refused: ${error}`));
    }
    if (ok) {
      accepted++;
      count(perCode, "verified");
      if (kinds.length === 1) count(perKindCode, `${kinds[0]} -> verified`);
      if (!expectVerified) failures.push(describe("a changed file verified"));
      else if (hint !== "accept" && !kinds.every((kind) => MUST_VERIFY_ALONE.has(kind))) {
        benignByChance++;
      }
      continue;
    }
    if (!(error instanceof RelayError) || !LICENSE_FILE_CODES.includes(error.code)) {
      const name = error instanceof Error ? error.constructor.name : typeof error;
      failures.push(describe(`threw ${name}: ${String(error)}`));
      continue;
    }
    count(perCode, error.code);
    if (kinds.length === 1) count(perKindCode, `${kinds[0]} -> ${error.code}`);
    if (expectVerified) failures.push(describe(`an unchanged file was refused: ${error.message}`));
    else if (hint !== undefined && hint !== "accept" && error.code !== hint) {
      failures.push(describe(`refused as ${error.code}, expected ${hint}: ${error.message}`));
    }
    // Keys of a few characters (" " after key.empty and key.trailing-space) match by chance.
    for (const key of new Set([c.key, c.key.trim(), seed.key])) {
      if (key.length >= 8 && messages(error).some((message) => message.includes(key))) {
        failures.push(describe(`the refusal holds the license key: ${messages(error)}`));
      }
    }
    if (c.publicKey === seed.publicKey && c.now === NOW && rng.chance(0.1)) {
      refusedFiles.push({
        family: seed.family,
        bytes: c.bytes,
        key: c.key,
        code: error.code,
      });
    }
  }

  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const summary = `fuzz seed ${SEED_TEXT}: ${CASES} cases in ${seconds} s, ${accepted} verified ` +
    `(${benignByChance} by an equivalent encoding), ${base64urlBit} base64url bodies changed\n` +
    `per code: ${JSON.stringify(table(perCode))}\n` +
    `per mutation kind: ${JSON.stringify(table(perKind))}\n` +
    `per lone mutation and outcome: ${JSON.stringify(table(perKindCode))}`;
  return { perKind, perKindAlone, perCode, perKindCode, failures, refusedFiles, summary };
}

Deno.test(`license file fuzz (seed ${SEED_TEXT}, ${CASES} cases): refusals are typed, never leak the key, only whitespace survives`, async () => {
  const { perKind, perKindAlone, perCode, perKindCode, failures, summary } = await runFuzz();
  console.log(summary);
  assert.deepEqual(failures.slice(0, 3), [], `${failures.length} failing cases`);
  const total = [...perCode.values()].reduce((a, b) => a + b, 0);
  assert.equal(total, CASES);
  assert.ok(total >= 10_000);
  for (const mutation of MUTATIONS) {
    assert.ok((perKind.get(mutation.kind) ?? 0) > 0, `${mutation.kind} ran`);
    assert.ok((perKindAlone.get(mutation.kind) ?? 0) > 0, `${mutation.kind} ran alone`);
  }
  for (const code of LICENSE_FILE_CODES) {
    assert.ok((perCode.get(code) ?? 0) > 0, `some case was refused as ${code}`);
  }
  assert.ok(base64urlBit > 0, "frame.base64url changed a body");
  for (const kind of MUST_VERIFY_ALONE) {
    assert.equal(perKindCode.get(`${kind} -> verified`), perKindAlone.get(kind), kind);
  }
});

Deno.test(`license file fuzz (seed ${SEED_TEXT}): no refused file is ever stored, batches are all or nothing`, async () => {
  const { refusedFiles } = await runFuzz();
  assert.ok(refusedFiles.length >= 300, `${refusedFiles.length} refused files collected`);
  const rng = new Rng(SEED ^ 0x51ab1e);
  const picked = Array.from({ length: 300 }, () => rng.pick(refusedFiles));
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = await openStore(path, { now: unixSeconds(NOW) });
  const stored: { id: string; family: "ed25519" | "rsa" }[] = [];
  const neverStoredGuids = new Set<string>();
  const mutatedFiles = new Set<string>();
  const rowCount = () =>
    Number(query<{ n: number }>(path, "SELECT count(*) AS n FROM licenses")[0].n);

  async function goodInput(family: Family): Promise<LicenseInput & { id: string }> {
    if (family === "keygen") {
      const license = rng.pick(KEYGEN.licenses);
      return {
        id: license.id,
        source: license.path,
        certificate: await Deno.readFile(license.path),
        key: license.key,
      };
    }
    const algorithm = rng.pick(LICENSE_FILE_ALGORITHMS.filter((a) => familyOf(a) === family));
    const minted = await mintLicenseFile(keyPairs[family], { algorithm, issued: ISSUED });
    return {
      id: minted.id,
      source: `good/${minted.id}.lic`,
      certificate: utf8.encode(minted.certificate),
      key: minted.key,
    };
  }

  try {
    for (const [i, bad] of picked.entries()) {
      // Now and then a clean batch, which must be stored whole.
      if (i % 10 === 0) {
        const family = rng.pick(["ed25519", "rsa"] as const);
        const goods = await Promise.all(
          Array.from({ length: rng.range(1, 3) }, () => goodInput(family)),
        );
        const verified = await verifyLicenses(goods, {
          publicKey: publicKeys[family],
          now: unixSeconds(NOW),
        });
        await addLicenses(store, verified, { now: unixSeconds(NOW) });
        stored.push(...goods.map((good) => ({ id: good.id, family })));
        assert.equal(rowCount(), stored.length);
      }

      const goods = await Promise.all(
        Array.from({ length: rng.range(1, 3) }, () => goodInput(bad.family)),
      );
      const batch: LicenseInput[] = [...goods];
      batch.splice(rng.int(batch.length + 1), 0, {
        source: `mutated/${i}.lic`,
        certificate: bad.bytes,
        key: bad.key,
      });
      mutatedFiles.add(bad.bytes.toHex());
      // Real Keygen files are never stored here, so they count too.
      for (const good of goods) neverStoredGuids.add(good.id);
      const before = rowCount();
      let refused: unknown;
      try {
        const verified = await verifyLicenses(batch, {
          publicKey: publicKeys[bad.family],
          now: unixSeconds(NOW),
        });
        await addLicenses(store, verified, { now: unixSeconds(NOW) });
      } catch (error) {
        refused = error;
      }
      assert.ok(refused instanceof RelayError, `batch ${i} was refused: ${refused}`);
      assert.equal(refused.code, bad.code, `batch ${i}: ${refused.message}`);
      assert.ok(refused.message.includes(`"mutated/${i}.lic"`), refused.message);
      if (bad.key.trim().length >= 8) assert.ok(!refused.message.includes(bad.key.trim()));
      assert.equal(rowCount(), before, `batch ${i} added nothing`);

      // A CRLF copy of a stored file verifies, but addLicenses refuses it as
      // a duplicate, and with it the whole batch.
      if (i % 25 === 5 && stored.length > 0) {
        const original = rng.pick(stored);
        const [row] = query<{ file: Uint8Array; key: string }>(
          path,
          "SELECT file, key FROM licenses WHERE guid = ?",
          original.id,
        );
        const text = lossyUtf8.decode(row.file).replaceAll("\n", "\r\n");
        const copy = { source: `crlf/${i}.lic`, certificate: utf8.encode(text), key: row.key };
        const fresh = await goodInput(original.family);
        const batch = rng.chance(0.5) ? [fresh, copy] : [copy, fresh];
        mutatedFiles.add(copy.certificate.toHex());
        neverStoredGuids.add(fresh.id);
        const verified = await verifyLicenses(batch, {
          publicKey: publicKeys[original.family],
          now: unixSeconds(NOW),
        });
        await assert.rejects(
          () => addLicenses(store, verified, { now: unixSeconds(NOW) }),
          (error) => error instanceof RelayError && error.code === "license_exists",
        );
        assert.equal(rowCount(), stored.length, `batch ${i} added nothing`);
      }
    }
  } finally {
    await store.close();
  }

  const rows = query<{ guid: string; file: Uint8Array }>(
    path,
    "SELECT guid, file FROM licenses ORDER BY id",
  );
  assert.deepEqual(rows.map((row) => row.guid), stored.map((license) => license.id));
  for (const row of rows) {
    assert.ok(!mutatedFiles.has(new Uint8Array(row.file).toHex()), `row ${row.guid} is mutated`);
    assert.ok(!neverStoredGuids.has(row.guid), `row ${row.guid} came from a refused batch`);
  }
  assert.equal(
    Number(query<{ n: number }>(path, "SELECT count(*) AS n FROM audit_logs")[0].n),
    rows.length,
  );
  assert.deepEqual(query(path, "PRAGMA integrity_check"), [{ integrity_check: "ok" }]);
});
