/**
 * The cryptography Keygen's license files and machine files share: the
 * public key, the certificate framing, the signature and the decryption, in
 * the order Keygen's Go SDK (keygen-go) applies them.
 *
 * A certificate is `-----BEGIN <KIND> FILE-----`, the base64 of the JSON
 * `{"enc","sig","alg"}`, then `-----END <KIND> FILE-----`. `sig` signs the
 * UTF-8 bytes of `"<prefix>/" + enc`, the prefix being `license` or
 * `machine`. For `aes-256-gcm+*` algorithms `enc` is
 * `base64(ciphertext).base64(iv).base64(tag)`, encrypted with AES-256-GCM
 * under SHA-256 of a secret: the license key for a license file, the license
 * key followed by the machine's fingerprint for a machine file. For
 * `base64+*` `enc` is the base64 of the dataset itself.
 *
 * The cryptography itself is `lib/client/keygen_crypto.ts`, which the client
 * SDK verifies files with too; this module frames it with Relay's typed
 * errors and messages. `lib/license_file.ts` and `lib/machine_file.ts` read
 * their datasets on top of this; the module never reads the clock: callers
 * pass `now`.
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
import {
  CERTIFICATE_ALGORITHMS,
  type CertificateAlgorithm,
  decryptWithSecret,
  importVendorKey,
  isGenuine,
  keyFitsAlgorithm,
  type VendorKey,
} from "./client/keygen_crypto.ts";

export { CERTIFICATE_ALGORITHMS, type CertificateAlgorithm };

/** Public key, imported once and reused for many files. */
export type PublicKey = VendorKey;

/**
 * Which file a certificate is: its framing (`LICENSE FILE`), its signing
 * prefix (`license`), the noun its messages use, and the advice a bad
 * signature gets.
 */
export interface CertificateKind {
  readonly label: "LICENSE FILE" | "MACHINE FILE";
  readonly prefix: "license" | "machine";
  /** `License file`, `Machine file`: the start of every message. */
  readonly noun: string;
  /** What to check when the signature does not verify. */
  readonly keyCheck: string;
}

/** The three members of a certificate. */
export interface Certificate {
  enc: string;
  sig: string;
  alg: string;
}

/** Keygen-go's default maximum clock drift for `meta.issued`: 5 minutes. */
export const DEFAULT_MAX_CLOCK_DRIFT_MS = 5 * 60 * 1000;

const KEY_HINT = "give your Keygen account's Ed25519 public key as 64 hex " +
  "characters, or its RSA public key in PEM format";
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Parses "64 hex chars" (Ed25519) or PEM text (RSA). Throws InvalidPublicKeyError. Trims whitespace. */
export async function importPublicKey(text: string): Promise<PublicKey> {
  const trimmed = text.trim();
  if (/^[0-9a-f]+$/i.test(trimmed) && trimmed.length !== 64) {
    throw new InvalidPublicKeyError(
      `Public key has ${trimmed.length} hex characters, not 64; ${KEY_HINT}`,
    );
  }
  let imported;
  try {
    imported = await importVendorKey(trimmed);
  } catch (cause) {
    const format = /^-----BEGIN/.test(trimmed) ? "RSA" : "Ed25519";
    throw new InvalidPublicKeyError(
      `Public key is not a valid ${format} key; ${KEY_HINT}`,
      { cause },
    );
  }
  if (imported) return imported.key;
  throw new InvalidPublicKeyError(`Public key is neither hex nor PEM; ${KEY_HINT}`);
}

/** Framing only: returns {enc, sig, alg} or throws MalformedLicenseFileError. */
export function parseCertificate(
  certificate: string | Uint8Array,
  kind: CertificateKind,
): Certificate {
  const text =
    (typeof certificate === "string" ? certificate : new TextDecoder().decode(certificate))
      .trim();
  const header = `-----BEGIN ${kind.label}-----`;
  const footer = `-----END ${kind.label}-----`;
  if (!text.startsWith(header) || !text.endsWith(footer)) {
    throw malformed(kind, `it does not start with ${header} and end with ${footer}`);
  }
  let fields: unknown;
  try {
    const body = text.slice(header.length, text.length - footer.length);
    fields = JSON.parse(strictUtf8.decode(Uint8Array.fromBase64(body)));
  } catch (cause) {
    throw malformed(kind, "its body is not base64-encoded JSON", cause);
  }
  const { enc, sig, alg } = isRecord(fields) ? fields : {};
  for (const [name, value] of [["enc", enc], ["sig", sig], ["alg", alg]]) {
    if (typeof value !== "string" || value === "") {
      throw malformed(kind, `its certificate has no "${name}" string`);
    }
  }
  return { enc: enc as string, sig: sig as string, alg: alg as string };
}

/** `alg` as a supported algorithm, or UnsupportedAlgorithmError naming them. */
export function supportedAlgorithm(
  alg: string,
  kind: CertificateKind,
  supported: readonly CertificateAlgorithm[] = CERTIFICATE_ALGORITHMS,
): CertificateAlgorithm {
  const algorithm = supported.find((known) => known === alg);
  if (algorithm) return algorithm;
  throw new UnsupportedAlgorithmError(
    `${kind.noun} algorithm "${alg}" is not supported; Relay supports ${supported.join(", ")}`,
  );
}

/**
 * Verifies the signature and opens `enc` (decrypting it under `secret` for
 * `aes-256-gcm+*`), concurrently since WebCrypto works off the main thread,
 * but reports a bad signature before anything about the contents, as
 * keygen-go does. Returns the dataset's bytes.
 *
 * @throws {LicenseFileNotGenuineError} the signature does not verify.
 * @throws {WrongLicenseKeyError} `secret` does not decrypt `enc`.
 * @throws {MalformedLicenseFileError} `enc` is not what `algorithm` says.
 */
export async function openCertificate(
  certificate: Certificate & { algorithm: CertificateAlgorithm },
  options: { publicKey: PublicKey; secret: string; kind: CertificateKind },
): Promise<Uint8Array> {
  const { algorithm, enc, sig } = certificate;
  const encrypted = algorithm.startsWith("aes-256-gcm+");
  const [signed, opened] = await Promise.allSettled([
    verifySignature(options.publicKey, { algorithm, enc, sig, kind: options.kind }),
    openEnc(enc, { encrypted, secret: options.secret, kind: options.kind }),
  ]);
  if (signed.status === "rejected") throw signed.reason;
  if (opened.status === "rejected") throw opened.reason;
  return opened.value;
}

/** The dataset's bytes as a JSON object, or MalformedLicenseFileError. */
export function parseDataset(bytes: Uint8Array, kind: CertificateKind): Record<string, unknown> {
  let dataset: unknown;
  try {
    dataset = JSON.parse(strictUtf8.decode(bytes));
  } catch (cause) {
    throw malformed(kind, "its dataset is not JSON", cause);
  }
  if (!isRecord(dataset)) throw malformed(kind, "its dataset is not a JSON object");
  return dataset;
}

/** A file's `meta`: when it was issued, when it expires, its time to live. */
export interface CertificateMeta {
  /** When Keygen issued the file (`meta.issued`). */
  issued: Date;
  /** When the file expires (`meta.expiry`), or null. */
  fileExpiry: Date | null;
  /** The file's time to live in seconds (`meta.ttl`), or null. */
  ttl: number | null;
}

/** Reads `meta.issued`, `meta.expiry` and `meta.ttl` of a dataset. */
export function readMeta(meta: unknown, kind: CertificateKind): CertificateMeta {
  const { issued, expiry, ttl } = isRecord(meta) ? meta : {};
  if (ttl != null && (typeof ttl !== "number" || !Number.isFinite(ttl))) {
    throw malformed(kind, "its meta.ttl is not a number");
  }
  const issuedAt = readDate(issued, "meta.issued", kind);
  if (!issuedAt) throw malformed(kind, "its dataset has no meta.issued");
  const expiresAt = readDate(expiry, "meta.expiry", kind);
  if (ttl && !expiresAt) throw malformed(kind, "its meta.ttl is set but not its meta.expiry");
  return { issued: issuedAt, fileExpiry: expiresAt, ttl: ttl ?? null };
}

/**
 * Refuses a file issued more than `maxClockDriftMs` ahead of `now` (unix
 * seconds), or one with a ttl whose expiry has passed, as keygen-go does.
 *
 * @throws {LicenseFileIssuedInFutureError} issued too far ahead.
 * @throws {LicenseFileExpiredError} expired.
 */
export function checkValidity(
  meta: CertificateMeta,
  options: { now: number; maxClockDriftMs?: number; kind: CertificateKind },
): void {
  const { kind } = options;
  // The file's dates keep Keygen's milliseconds; `now` is whole seconds.
  const now = options.now * 1000;
  const drift = options.maxClockDriftMs ?? DEFAULT_MAX_CLOCK_DRIFT_MS;
  if (meta.issued.getTime() - now > drift) {
    throw new LicenseFileIssuedInFutureError(
      `${kind.noun} was issued at ${meta.issued.toISOString()}, more than ` +
        `${drift / 1000} s ahead of this machine's clock; check the clock`,
    );
  }
  if (meta.ttl && now > meta.fileExpiry!.getTime()) {
    throw new LicenseFileExpiredError(
      `${kind.noun} expired at ${meta.fileExpiry!.toISOString()}; ` +
        `check out a new ${kind.noun.toLowerCase()} from Keygen`,
    );
  }
}

/** A date member of a dataset, null when absent. */
export function readDate(value: unknown, field: string, kind: CertificateKind): Date | null {
  if (value === null || value === undefined) return null;
  const date = new Date(typeof value === "string" ? value : Number.NaN);
  if (Number.isNaN(date.getTime())) throw malformed(kind, `its ${field} is not a time`);
  return date;
}

/** Whether `value` is a plain JSON object. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The error of a file whose framing or dataset is not Keygen's. */
export function malformed(
  kind: CertificateKind,
  problem: string,
  cause?: unknown,
): MalformedLicenseFileError {
  return new MalformedLicenseFileError(
    `${kind.noun} is malformed: ${problem}; check that it is an unaltered ` +
      `Keygen ${kind.noun.toLowerCase()}`,
    { cause },
  );
}

/** Checks `sig` over `<prefix>/<enc>` with the public key, as `algorithm` says. */
async function verifySignature(
  publicKey: PublicKey,
  { algorithm, enc, sig, kind }: {
    algorithm: CertificateAlgorithm;
    enc: string;
    sig: string;
    kind: CertificateKind;
  },
): Promise<void> {
  if (!keyFitsAlgorithm(publicKey, algorithm)) {
    throw new LicenseFileNotGenuineError(
      `${kind.noun} is not genuine for this public key: the public key type ` +
        `(${publicKey.kind}) does not match the file's algorithm ` +
        `(${algorithm}); ${kind.keyCheck}`,
    );
  }
  if (!(await isGenuine(publicKey, { algorithm, prefix: kind.prefix, enc, sig }))) {
    throw new LicenseFileNotGenuineError(
      `${kind.noun} is not genuine: its signature does not match the public key; ${kind.keyCheck}`,
    );
  }
}

/** Decodes `enc` to the dataset: decrypts it for `aes-256-gcm+*`, decodes it for `base64+*`. */
async function openEnc(
  enc: string,
  { encrypted, secret, kind }: { encrypted: boolean; secret: string; kind: CertificateKind },
): Promise<Uint8Array> {
  if (!encrypted) return decodeBase64(enc, kind);
  const parts = enc.split(".");
  if (parts.length !== 3) {
    throw malformed(kind, `its enc has ${parts.length} dot-separated parts, not 3`);
  }
  const [ciphertext, iv, tag] = parts.map((part) => decodeBase64(part, kind));
  if (iv.length !== 12 || tag.length !== 16) {
    throw malformed(kind, "its enc IV is not 12 bytes or its tag not 16 bytes");
  }
  try {
    return await decryptWithSecret({ ciphertext, iv, tag }, secret);
  } catch (cause) {
    throw new WrongLicenseKeyError(
      `License key does not decrypt the ${kind.noun.toLowerCase()}; give this license's key`,
      { cause },
    );
  }
}

function decodeBase64(text: string, kind: CertificateKind): Uint8Array<ArrayBuffer> {
  try {
    return Uint8Array.fromBase64(text);
  } catch (cause) {
    throw malformed(kind, "its enc is not base64", cause);
  }
}
