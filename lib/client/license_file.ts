/**
 * Offline verification of a Keygen license file with the vendor's public
 * key, for the application: check the signature over `"license/" + enc`,
 * decrypt `enc` (AES-256-GCM under SHA-256 of the license key) or decode it
 * (`base64+*`), and read the dataset. The cryptography is
 * `./keygen_crypto.ts`, which Relay's own `lib/keygen_certificate.ts` uses
 * too; this module frames it with the client's errors.
 *
 * Algorithms: `aes-256-gcm+ed25519`, `aes-256-gcm+rsa-pss-sha256`,
 * `aes-256-gcm+rsa-sha256` and their unencrypted `base64+…` variants.
 *
 * @module
 */

import { fromBase64 } from "./encoding.ts";
import { RelayClientError } from "./errors.ts";
import {
  CERTIFICATE_ALGORITHMS,
  decryptWithSecret,
  importVendorKey,
  isGenuine,
  keyFitsAlgorithm,
  type VendorKey,
} from "./keygen_crypto.ts";

export type { VendorKey } from "./keygen_crypto.ts";

/** A verified, decrypted license file. */
export interface LicenseInfo {
  /** The license's id (`data.id`). */
  id: string;
  /** The license key (`data.attributes.key`). */
  key: string;
  /** The certificate's `alg`. */
  algorithm: string;
  /** When the license itself expires (`data.attributes.expiry`), or null. */
  expiry: Date | null;
  /** When Keygen issued the file (`meta.issued`). */
  issued: Date;
  /** When the file expires (`meta.expiry`), or null. */
  fileExpiry: Date | null;
  /** Codes of the included entitlements; [] if none. */
  entitlements: string[];
  /** The whole decrypted dataset (`data`, `included`, `meta`), for what else the application reads. */
  dataset: Record<string, unknown>;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Imports the vendor's Keygen public key: Ed25519 as 64 hex digits, or RSA
 * as PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`).
 *
 * @throws {RelayClientError} `invalid_public_key`.
 */
export async function importPublicKey(text: string): Promise<VendorKey> {
  let imported;
  try {
    imported = await importVendorKey(text);
  } catch (cause) {
    throw new RelayClientError("invalid_public_key", "Public key is not a valid key", { cause });
  }
  if (imported) return imported.key;
  throw new RelayClientError(
    "invalid_public_key",
    "Public key is neither 64 hex digits (Ed25519) nor PEM (RSA)",
  );
}

/** Options of {@link verifyLicenseFile}. */
export interface LicenseFileCheck {
  /** The vendor's public key. */
  publicKey: VendorKey;
  /** The license key: it decrypts the file (or must match it, for `base64+*`). */
  licenseKey: string;
  /** The current time, unix seconds: an expired file (`meta.expiry`) is refused. */
  now: number;
}

/**
 * Verifies, decrypts and reads a license file (its text, or the base64 that
 * Relay's answers carry, or bytes).
 *
 * @throws {RelayClientError} `invalid_license_file`: malformed, not signed by
 *   this key, the wrong license key, or expired.
 */
export async function verifyLicenseFile(
  file: string | Uint8Array,
  check: LicenseFileCheck,
): Promise<LicenseInfo> {
  const { enc, sig, alg } = readCertificate(file);
  const algorithm = CERTIFICATE_ALGORITHMS.find((known) => known === alg);
  if (!algorithm) return invalid(`its algorithm "${alg}" is not supported`);
  if (!keyFitsAlgorithm(check.publicKey, algorithm)) {
    invalid(`its algorithm ${alg} does not match the ${check.publicKey.kind} public key`);
  }
  if (!(await isGenuine(check.publicKey, { algorithm, prefix: "license", enc, sig }))) {
    invalid("its signature does not match the vendor's public key");
  }
  const bytes = alg.startsWith("aes-256-gcm+")
    ? await decrypt(enc, check.licenseKey)
    : decode(enc, "its enc is not base64");
  const info = readDataset(bytes, alg);
  if (!alg.startsWith("aes-256-gcm+") && info.key !== check.licenseKey) {
    invalid("the license key does not match it");
  }
  if (info.fileExpiry && info.fileExpiry.getTime() < check.now * 1000) {
    invalid(`it expired at ${info.fileExpiry.toISOString()}`);
  }
  return info;
}

/** The certificate's `{enc, sig, alg}`, from its text, the base64 of its text, or its bytes. */
function readCertificate(file: string | Uint8Array): { enc: string; sig: string; alg: string } {
  let text = typeof file === "string" ? file.trim() : strictUtf8.decode(file).trim();
  if (!text.startsWith("-----")) text = strictUtf8.decode(decode(text, "it is not PEM")).trim();
  const match = /^-----BEGIN LICENSE FILE-----([\s\S]*)-----END LICENSE FILE-----$/.exec(text);
  if (!match) invalid("it is not framed by -----BEGIN/END LICENSE FILE-----");
  let fields: unknown;
  try {
    fields = JSON.parse(strictUtf8.decode(fromBase64(match![1])));
  } catch {
    invalid("its body is not base64-encoded JSON");
  }
  const { enc, sig, alg } = isRecord(fields) ? fields : {};
  if (typeof enc !== "string" || typeof sig !== "string" || typeof alg !== "string") {
    invalid("its certificate lacks enc, sig or alg");
  }
  return { enc: enc as string, sig: sig as string, alg: alg as string };
}

async function decrypt(enc: string, licenseKey: string): Promise<Uint8Array> {
  const parts = enc.split(".");
  if (parts.length !== 3) invalid("its enc is not ciphertext.iv.tag");
  const [ciphertext, iv, tag] = parts.map((part) => decode(part, "its enc is not base64"));
  try {
    return await decryptWithSecret({ ciphertext, iv, tag }, licenseKey);
  } catch {
    return invalid("the license key does not decrypt it");
  }
}

function readDataset(bytes: Uint8Array, algorithm: string): LicenseInfo {
  let dataset: unknown;
  try {
    dataset = JSON.parse(strictUtf8.decode(bytes));
  } catch {
    invalid("its dataset is not JSON");
  }
  if (!isRecord(dataset)) return invalid("its dataset is not a JSON object");
  const { data, meta, included } = dataset;
  const { id, attributes } = isRecord(data) ? data : {};
  const { key, expiry } = isRecord(attributes) ? attributes : {};
  const { issued, expiry: fileExpiry } = isRecord(meta) ? meta : {};
  if (typeof id !== "string" || id === "") invalid("its dataset has no data.id");
  if (typeof key !== "string") invalid("its dataset has no data.attributes.key");
  const issuedAt = readDate(issued, "meta.issued");
  if (issuedAt === null) invalid("its dataset has no meta.issued");
  return {
    id: id as string,
    key: key as string,
    algorithm,
    expiry: readDate(expiry, "data.attributes.expiry"),
    issued: issuedAt!,
    fileExpiry: readDate(fileExpiry, "meta.expiry"),
    entitlements: (Array.isArray(included) ? included : []).flatMap((item: unknown) => {
      const { type, attributes } = isRecord(item) ? item : {};
      const code = isRecord(attributes) ? attributes.code : undefined;
      return type === "entitlements" && typeof code === "string" ? [code] : [];
    }),
    dataset,
  };
}

function readDate(value: unknown, field: string): Date | null {
  if (value === null || value === undefined) return null;
  const date = new Date(typeof value === "string" ? value : Number.NaN);
  if (Number.isNaN(date.getTime())) invalid(`its ${field} is not a time`);
  return date;
}

function decode(text: string, problem: string): Uint8Array<ArrayBuffer> {
  try {
    return fromBase64(text);
  } catch {
    return invalid(problem);
  }
}

function invalid(problem: string): never {
  throw new RelayClientError("invalid_license_file", `License file is invalid: ${problem}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
