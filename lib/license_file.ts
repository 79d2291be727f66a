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
 * The cryptography is `lib/keygen_certificate.ts`, shared with machine files.
 *
 * The module never reads the clock: callers pass `now`.
 *
 * @module
 */

import { WrongLicenseKeyError } from "./errors.ts";
import {
  type Certificate,
  CERTIFICATE_ALGORITHMS,
  type CertificateAlgorithm,
  type CertificateKind,
  checkValidity,
  isRecord,
  malformed,
  openCertificate,
  parseCertificate as parseAnyCertificate,
  parseDataset,
  type PublicKey,
  readDate,
  readMeta,
  supportedAlgorithm,
} from "./keygen_certificate.ts";

export { importPublicKey, type PublicKey } from "./keygen_certificate.ts";

/** The `alg` values that Keygen issues and Relay can verify. */
export type LicenseFileAlgorithm = CertificateAlgorithm;

/** Every supported {@link LicenseFileAlgorithm}, Keygen's default first. */
export const LICENSE_FILE_ALGORITHMS: readonly LicenseFileAlgorithm[] = CERTIFICATE_ALGORITHMS;

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
  /** How many machines the license allows (`data.attributes.maxMachines`); null: not stated. */
  maxMachines: number | null;
  /** How many users the license allows (`data.attributes.maxUsers`); null: not stated. */
  maxUsers: number | null;
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

/** License files: `-----BEGIN LICENSE FILE-----`, signed over `license/` + enc. */
export const LICENSE_FILE: CertificateKind = {
  label: "LICENSE FILE",
  prefix: "license",
  noun: "License file",
  keyCheck: "check that --public-key is your Keygen account's public key",
};

/** Framing only: returns {enc, sig, alg} or throws MalformedLicenseFileError. */
export function parseCertificate(certificate: string | Uint8Array): Certificate {
  return parseAnyCertificate(certificate, LICENSE_FILE);
}

/** Verify signature, decrypt, read dataset, check issued/expiry against now. */
export async function verifyLicenseFile(
  certificate: string | Uint8Array,
  options: VerifyOptions,
): Promise<LicenseFile> {
  const fields = parseCertificate(certificate);
  const algorithm = supportedAlgorithm(fields.alg, LICENSE_FILE);
  const bytes = await openCertificate({ ...fields, algorithm }, {
    publicKey: options.publicKey,
    secret: options.licenseKey,
    kind: LICENSE_FILE,
  });
  const file = readDataset(bytes, algorithm);
  if (!algorithm.startsWith("aes-256-gcm+") && file.key !== options.licenseKey) {
    throw new WrongLicenseKeyError(
      "License key does not match the license file; give this license's key",
    );
  }
  checkValidity(file, { ...options, kind: LICENSE_FILE });
  return file;
}

function readDataset(bytes: Uint8Array, algorithm: LicenseFileAlgorithm): LicenseFile {
  const { data, meta, included } = parseDataset(bytes, LICENSE_FILE);
  const { id, attributes } = isRecord(data) ? data : {};
  const { key, expiry, maxMachines, maxUsers } = isRecord(attributes) ? attributes : {};
  if (typeof id !== "string" || id === "") {
    throw malformed(LICENSE_FILE, "its dataset has no data.id");
  }
  if (typeof key !== "string") {
    throw malformed(LICENSE_FILE, "its dataset has no data.attributes.key");
  }
  return {
    id,
    key,
    algorithm,
    expiry: readDate(expiry, "data.attributes.expiry", LICENSE_FILE),
    ...readMeta(meta, LICENSE_FILE),
    maxMachines: readLimit(maxMachines),
    maxUsers: readLimit(maxUsers),
    entitlements: (Array.isArray(included) ? included : []).flatMap((item: unknown) => {
      const { type, attributes } = isRecord(item) ? item : {};
      const code = isRecord(attributes) ? attributes.code : undefined;
      return type === "entitlements" && typeof code === "string" ? [code] : [];
    }),
  };
}

/**
 * A limit of the dataset: a non-negative integer, else null (absent, null,
 * or not a whole number: the reference Relay never reads these, so a file it
 * accepts is never refused for them).
 */
function readLimit(value: unknown): number | null {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : null;
}
