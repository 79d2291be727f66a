/**
 * Keygen license files: read the certificate, verify its signature, decrypt
 * its dataset and check its issue and expiry times, in the order Keygen's Go SDK
 * (keygen-go) does.
 *
 * A certificate is `-----BEGIN LICENSE FILE-----`, the base64 of the JSON
 * `{"enc","sig","alg"}`, then `-----END LICENSE FILE-----`. `sig` signs the
 * UTF-8 bytes of `"license/" + enc`. For `aes-256-gcm+*` algorithms `enc` is
 * `base64(ciphertext).base64(iv).base64(tag)`, encrypted with AES-256-GCM under
 * SHA-256(license key); for `base64+*` it is the base64 of the dataset itself.
 *
 * The module never reads the clock: callers pass `now`.
 *
 * @module
 */

import {
  InvalidPublicKeyError,
  LicenseFileExpiredError,
  LicenseFileIssuedInFutureError,
  LicenseFileNotGenuineError,
  MalformedLicenseFileError,
  UnsupportedAlgorithmError,
  WrongLicenseKeyError,
} from "./errors.ts";

/** The `alg` values that Keygen issues and Relay can verify. */
export type LicenseFileAlgorithm =
  | "aes-256-gcm+ed25519"
  | "base64+ed25519"
  | "aes-256-gcm+rsa-pss-sha256"
  | "aes-256-gcm+rsa-sha256"
  | "base64+rsa-pss-sha256"
  | "base64+rsa-sha256";

/** Every supported {@link LicenseFileAlgorithm}, Keygen's default first. */
export const LICENSE_FILE_ALGORITHMS: readonly LicenseFileAlgorithm[] = [
  "aes-256-gcm+ed25519",
  "base64+ed25519",
  "aes-256-gcm+rsa-pss-sha256",
  "aes-256-gcm+rsa-sha256",
  "base64+rsa-pss-sha256",
  "base64+rsa-sha256",
];

/** Public key, imported once and reused for many files. */
export type PublicKey =
  | { kind: "ed25519"; key: CryptoKey }
  | { kind: "rsa"; pss: CryptoKey; pkcs1: CryptoKey; modulusBits: number };

/** A verified, decrypted license file. */
export interface LicenseFile {
  /** The license's id (`data.id`). */
  id: string;
  /** The license key (`data.attributes.key`). */
  key: string;
  /** The certificate's `alg`. */
  algorithm: LicenseFileAlgorithm;
  /** When the license itself expires (`data.attributes.expiry`), or null. */
  expiry: Date | null;
  /** When Keygen issued the file (`meta.issued`). */
  issued: Date;
  /** When the file expires (`meta.expiry`), or null. */
  fileExpiry: Date | null;
  /** The file's time to live in seconds (`meta.ttl`), or null. */
  ttl: number | null;
  /** Codes of the included entitlements, [] if none. */
  entitlements: string[];
}

/** Inputs of {@link verifyLicenseFile}. */
export interface VerifyOptions {
  /** The Keygen account's public key, from {@link importPublicKey}. */
  publicKey: PublicKey;
  /** The license key, which decrypts the file (or must match it for `base64+*`). */
  licenseKey: string;
  /** The current time, in unix seconds. */
  now: number;
  /** How far `meta.issued` may lie ahead of `now`; default 5 minutes. */
  maxClockDriftMs?: number;
}

const HEADER = "-----BEGIN LICENSE FILE-----";
const FOOTER = "-----END LICENSE FILE-----";
const DEFAULT_MAX_CLOCK_DRIFT_MS = 5 * 60 * 1000;
const PEM = /^-----BEGIN (RSA )?PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END \1PUBLIC KEY-----$/;
/** DER AlgorithmIdentifier of rsaEncryption with NULL parameters. */
const RSA_ALGORITHM_ID = Uint8Array.fromHex("300d06092a864886f70d0101010500");
const KEY_HINT = "give your Keygen account's Ed25519 public key as 64 hex " +
  "characters, or its RSA public key in PEM format";
const KEY_CHECK = "check that --public-key is your Keygen account's public key";
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Parses "64 hex chars" (Ed25519) or PEM text (RSA). Throws InvalidPublicKeyError. Trims whitespace. */
export async function importPublicKey(text: string): Promise<PublicKey> {
  const trimmed = text.trim();
  if (/^[0-9a-f]+$/i.test(trimmed) && trimmed.length !== 64) {
    throw new InvalidPublicKeyError(
      `Public key has ${trimmed.length} hex characters, not 64; ${KEY_HINT}`,
    );
  }
  const pem = PEM.exec(trimmed);
  try {
    if (/^[0-9a-f]{64}$/i.test(trimmed)) {
      const raw = Uint8Array.fromHex(trimmed);
      return { kind: "ed25519", key: await importVerifyKey(["raw", raw], "Ed25519") };
    }
    if (pem) {
      const der = Uint8Array.fromBase64(pem[2]);
      const spki = pem[1] ? wrapPkcs1InSpki(der) : der;
      const hash = "SHA-256";
      const pss = await importVerifyKey(["spki", spki], { name: "RSA-PSS", hash });
      const pkcs1 = await importVerifyKey(["spki", spki], { name: "RSASSA-PKCS1-v1_5", hash });
      const { modulusLength } = pss.algorithm as RsaHashedKeyAlgorithm;
      return { kind: "rsa", pss, pkcs1, modulusBits: modulusLength };
    }
  } catch (cause) {
    throw new InvalidPublicKeyError(
      `Public key is not a valid ${pem ? "RSA" : "Ed25519"} key; ${KEY_HINT}`,
      { cause },
    );
  }
  throw new InvalidPublicKeyError(`Public key is neither hex nor PEM; ${KEY_HINT}`);
}

/** Framing only: returns {enc, sig, alg} or throws MalformedLicenseFileError. */
export function parseCertificate(
  certificate: string | Uint8Array,
): { enc: string; sig: string; alg: string } {
  const text =
    (typeof certificate === "string" ? certificate : new TextDecoder().decode(certificate))
      .trim();
  if (!text.startsWith(HEADER) || !text.endsWith(FOOTER)) {
    throw malformed(`it does not start with ${HEADER} and end with ${FOOTER}`);
  }
  let fields: unknown;
  try {
    const body = text.slice(HEADER.length, text.length - FOOTER.length);
    fields = JSON.parse(strictUtf8.decode(Uint8Array.fromBase64(body)));
  } catch (cause) {
    throw malformed("its body is not base64-encoded JSON", cause);
  }
  const { enc, sig, alg } = isRecord(fields) ? fields : {};
  for (const [name, value] of [["enc", enc], ["sig", sig], ["alg", alg]]) {
    if (typeof value !== "string" || value === "") {
      throw malformed(`its certificate has no "${name}" string`);
    }
  }
  return { enc: enc as string, sig: sig as string, alg: alg as string };
}

/** Verify signature, decrypt, read dataset, check issued/expiry against now. */
export async function verifyLicenseFile(
  certificate: string | Uint8Array,
  options: VerifyOptions,
): Promise<LicenseFile> {
  const { enc, sig, alg } = parseCertificate(certificate);
  const algorithm = LICENSE_FILE_ALGORITHMS.find((known) => known === alg);
  if (!algorithm) {
    throw new UnsupportedAlgorithmError(
      `License file algorithm "${alg}" is not supported; Relay supports ` +
        LICENSE_FILE_ALGORITHMS.join(", "),
    );
  }
  // Verify and decrypt concurrently (WebCrypto works off the main thread), but
  // report a bad signature before anything about the contents, as keygen-go.
  const encrypted = algorithm.startsWith("aes-256-gcm+");
  const [signed, opened] = await Promise.allSettled([
    verifySignature(options.publicKey, { algorithm, enc, sig }),
    openEnc(enc, { encrypted, licenseKey: options.licenseKey }),
  ]);
  if (signed.status === "rejected") throw signed.reason;
  if (opened.status === "rejected") throw opened.reason;
  const file = readDataset(opened.value, algorithm);
  if (!encrypted && file.key !== options.licenseKey) {
    throw new WrongLicenseKeyError(
      "License key does not match the license file; give this license's key",
    );
  }

  // The file's dates keep Keygen's milliseconds; `now` is whole seconds.
  const now = options.now * 1000;
  const drift = options.maxClockDriftMs ?? DEFAULT_MAX_CLOCK_DRIFT_MS;
  if (file.issued.getTime() - now > drift) {
    throw new LicenseFileIssuedInFutureError(
      `License file was issued at ${file.issued.toISOString()}, more than ` +
        `${drift / 1000} s ahead of this machine's clock; check the clock`,
    );
  }
  if (file.ttl && now > file.fileExpiry!.getTime()) {
    throw new LicenseFileExpiredError(
      `License file expired at ${file.fileExpiry!.toISOString()}; ` +
        "check out a new license file from Keygen",
    );
  }
  return file;
}

/** Checks `sig` over `license/<enc>` with the public key, as `algorithm` says. */
async function verifySignature(
  publicKey: PublicKey,
  { algorithm, enc, sig }: { algorithm: LicenseFileAlgorithm; enc: string; sig: string },
): Promise<void> {
  if (algorithm.endsWith("+ed25519") !== (publicKey.kind === "ed25519")) {
    throw new LicenseFileNotGenuineError(
      `License file is not genuine for this public key: the public key type ` +
        `(${publicKey.kind}) does not match the file's algorithm ` +
        `(${algorithm}); ${KEY_CHECK}`,
    );
  }
  const [params, key]: [AlgorithmIdentifier | RsaPssParams, CryptoKey] =
    publicKey.kind === "ed25519"
      ? ["Ed25519", publicKey.key]
      : algorithm.endsWith("+rsa-pss-sha256")
      // Keygen signs with the maximum salt length: emLen - hLen - 2.
      ? [{ name: "RSA-PSS", saltLength: maxPssSaltLength(publicKey.modulusBits) }, publicKey.pss]
      : ["RSASSA-PKCS1-v1_5", publicKey.pkcs1];
  const data = utf8.encode(`license/${enc}`);
  let valid = false;
  try {
    valid = await crypto.subtle.verify(params, key, Uint8Array.fromBase64(sig), data);
  } catch {
    // A sig that is not base64, or that WebCrypto refuses outright.
  }
  if (!valid) {
    throw new LicenseFileNotGenuineError(
      `License file is not genuine: its signature does not match the public key; ${KEY_CHECK}`,
    );
  }
}

/** Decodes `enc` to the dataset: decrypts it for `aes-256-gcm+*`, decodes it for `base64+*`. */
async function openEnc(
  enc: string,
  { encrypted, licenseKey }: { encrypted: boolean; licenseKey: string },
): Promise<Uint8Array> {
  if (!encrypted) return decodeBase64(enc);
  const parts = enc.split(".");
  if (parts.length !== 3) {
    throw malformed(`its enc has ${parts.length} dot-separated parts, not 3`);
  }
  const [ciphertext, iv, tag] = parts.map(decodeBase64);
  if (iv.length !== 12 || tag.length !== 16) {
    throw malformed("its enc IV is not 12 bytes or its tag not 16 bytes");
  }
  const sealed = new Uint8Array(ciphertext.length + tag.length);
  sealed.set(ciphertext);
  sealed.set(tag, ciphertext.length);
  const secret = await crypto.subtle.digest("SHA-256", utf8.encode(licenseKey));
  const key = await crypto.subtle.importKey("raw", secret, "AES-GCM", false, ["decrypt"]);
  try {
    const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv }, key, sealed);
    return new Uint8Array(plain);
  } catch (cause) {
    throw new WrongLicenseKeyError(
      "License key does not decrypt the license file; give this license's key",
      { cause },
    );
  }
}

function readDataset(bytes: Uint8Array, algorithm: LicenseFileAlgorithm): LicenseFile {
  let dataset: unknown;
  try {
    dataset = JSON.parse(strictUtf8.decode(bytes));
  } catch (cause) {
    throw malformed("its dataset is not JSON", cause);
  }
  const { data, meta, included } = isRecord(dataset) ? dataset : {};
  const { id, attributes } = isRecord(data) ? data : {};
  const { key, expiry } = isRecord(attributes) ? attributes : {};
  const { issued, expiry: fileExpiry, ttl } = isRecord(meta) ? meta : {};
  if (typeof id !== "string" || id === "") throw malformed("its dataset has no data.id");
  if (typeof key !== "string") throw malformed("its dataset has no data.attributes.key");
  if (ttl != null && (typeof ttl !== "number" || !Number.isFinite(ttl))) {
    throw malformed("its meta.ttl is not a number");
  }
  const issuedAt = readDate(issued, "meta.issued");
  if (!issuedAt) throw malformed("its dataset has no meta.issued");
  const expiresAt = readDate(fileExpiry, "meta.expiry");
  if (ttl && !expiresAt) throw malformed("its meta.ttl is set but not its meta.expiry");
  return {
    id,
    key,
    algorithm,
    expiry: readDate(expiry, "data.attributes.expiry"),
    issued: issuedAt,
    fileExpiry: expiresAt,
    ttl: ttl ?? null,
    entitlements: (Array.isArray(included) ? included : []).flatMap((item: unknown) => {
      const { type, attributes } = isRecord(item) ? item : {};
      const code = isRecord(attributes) ? attributes.code : undefined;
      return type === "entitlements" && typeof code === "string" ? [code] : [];
    }),
  };
}

function readDate(value: unknown, field: string): Date | null {
  if (value === null || value === undefined) return null;
  const date = new Date(typeof value === "string" ? value : Number.NaN);
  if (Number.isNaN(date.getTime())) throw malformed(`its ${field} is not a time`);
  return date;
}

function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  try {
    return Uint8Array.fromBase64(text);
  } catch (cause) {
    throw malformed("its enc is not base64", cause);
  }
}

/** Imports a public key (`[format, bytes]`) that can only verify. */
function importVerifyKey(
  [format, keyData]: ["raw" | "spki", Uint8Array<ArrayBuffer>],
  algorithm: AlgorithmIdentifier | RsaHashedImportParams,
): Promise<CryptoKey> {
  return crypto.subtle.importKey(format, keyData, algorithm, false, ["verify"]);
}

/** Keygen's PSS salt length for a modulus: the maximum, emLen - hLen - 2. */
function maxPssSaltLength(modulusBits: number): number {
  return Math.ceil((modulusBits - 1) / 8) - 32 - 2;
}

/** Wraps a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo, which WebCrypto imports. */
function wrapPkcs1InSpki(pkcs1: Uint8Array): Uint8Array<ArrayBuffer> {
  const bitString = derElement(0x03, [0x00, ...pkcs1]);
  return derElement(0x30, [...RSA_ALGORITHM_ID, ...bitString]);
}

function derElement(tag: number, content: number[]): Uint8Array<ArrayBuffer> {
  const n = content.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Uint8Array.from([tag, ...length, ...content]);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function malformed(problem: string, cause?: unknown): MalformedLicenseFileError {
  return new MalformedLicenseFileError(
    `License file is malformed: ${problem}; check that it is an unaltered ` +
      "Keygen license file",
    { cause },
  );
}
