/**
 * Offline verification of a Keygen license file with the vendor's public
 * key, for the application: check the signature over `"license/" + enc`,
 * decrypt `enc` (AES-256-GCM under SHA-256 of the license key) or decode it
 * (`base64+*`), and read the dataset. The same format as Relay's
 * `lib/keygen_certificate.ts`, written again here on WebCrypto alone so the
 * client runs on Node.js 20 too (which lacks `Uint8Array.fromBase64`).
 *
 * Algorithms: `aes-256-gcm+ed25519`, `aes-256-gcm+rsa-pss-sha256`,
 * `aes-256-gcm+rsa-sha256` and their unencrypted `base64+…` variants.
 *
 * @module
 */

import { fromBase64, fromHex } from "./encoding.ts";
import { RelayClientError } from "./errors.ts";

/** The vendor's public key, imported once by {@link importPublicKey}. */
export type VendorKey =
  | { kind: "ed25519"; key: CryptoKey }
  | { kind: "rsa"; pss: CryptoKey; pkcs1: CryptoKey; modulusBits: number };

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

const ALGORITHMS = [
  "aes-256-gcm+ed25519",
  "base64+ed25519",
  "aes-256-gcm+rsa-pss-sha256",
  "aes-256-gcm+rsa-sha256",
  "base64+rsa-pss-sha256",
  "base64+rsa-sha256",
];
const PEM = /^-----BEGIN (RSA )?PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END \1PUBLIC KEY-----$/;
/** DER AlgorithmIdentifier of rsaEncryption with NULL parameters. */
const RSA_ALGORITHM_ID = "300d06092a864886f70d0101010500";
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Imports the vendor's Keygen public key: Ed25519 as 64 hex digits, or RSA
 * as PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`).
 *
 * @throws {RelayClientError} `invalid_public_key`.
 */
export async function importPublicKey(text: string): Promise<VendorKey> {
  const trimmed = text.trim();
  const pem = PEM.exec(trimmed);
  try {
    if (/^[0-9a-f]{64}$/i.test(trimmed)) {
      const key = await verifyKey("raw", fromHex(trimmed), "Ed25519");
      return { kind: "ed25519", key };
    }
    if (pem) {
      const der = fromBase64(pem[2]);
      const spki = pem[1] ? wrapPkcs1(der) : der;
      const pss = await verifyKey("spki", spki, { name: "RSA-PSS", hash: "SHA-256" });
      const pkcs1 = await verifyKey("spki", spki, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" });
      const { modulusLength } = pss.algorithm as RsaHashedKeyAlgorithm;
      return { kind: "rsa", pss, pkcs1, modulusBits: modulusLength };
    }
  } catch (cause) {
    throw new RelayClientError("invalid_public_key", "Public key is not a valid key", { cause });
  }
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
  if (!ALGORITHMS.includes(alg)) invalid(`its algorithm "${alg}" is not supported`);
  const ed25519 = alg.endsWith("+ed25519");
  if (ed25519 !== (check.publicKey.kind === "ed25519")) {
    invalid(`its algorithm ${alg} does not match the ${check.publicKey.kind} public key`);
  }
  const key = check.publicKey;
  const params: [AlgorithmIdentifier | RsaPssParams, CryptoKey] = key.kind === "ed25519"
    ? ["Ed25519", key.key]
    : alg.endsWith("+rsa-pss-sha256")
    // Keygen signs with the maximum salt length: emLen - hLen - 2.
    ? [{ name: "RSA-PSS", saltLength: Math.ceil((key.modulusBits - 1) / 8) - 34 }, key.pss]
    : ["RSASSA-PKCS1-v1_5", key.pkcs1];
  let genuine = false;
  try {
    genuine = await crypto.subtle.verify(...params, fromBase64(sig), utf8.encode(`license/${enc}`));
  } catch {
    // A sig that is not base64, or one WebCrypto refuses outright.
  }
  if (!genuine) invalid("its signature does not match the vendor's public key");
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
  const sealed = new Uint8Array(ciphertext.length + tag.length);
  sealed.set(ciphertext);
  sealed.set(tag, ciphertext.length);
  const digest = await crypto.subtle.digest("SHA-256", utf8.encode(licenseKey));
  const key = await crypto.subtle.importKey("raw", digest, "AES-GCM", false, ["decrypt"]);
  try {
    return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv }, key, sealed));
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

function verifyKey(
  format: "raw" | "spki",
  data: Uint8Array<ArrayBuffer>,
  algorithm: AlgorithmIdentifier | RsaHashedImportParams,
): Promise<CryptoKey> {
  return crypto.subtle.importKey(format, data, algorithm, false, ["verify"]);
}

/** Wraps a PKCS#1 RSAPublicKey in the SubjectPublicKeyInfo that WebCrypto imports. */
function wrapPkcs1(pkcs1: Uint8Array): Uint8Array<ArrayBuffer> {
  const element = (tag: number, content: number[]) => {
    const n = content.length;
    const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
    return [tag, ...length, ...content];
  };
  const bitString = element(0x03, [0x00, ...pkcs1]);
  return Uint8Array.from(element(0x30, [...fromHex(RSA_ALGORITHM_ID), ...bitString]));
}
