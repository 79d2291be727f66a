/**
 * Keygen machine files: the certificate Keygen's "check out machine" action
 * issues for one activated machine, which unlocks a node-locked Relay.
 *
 * The format is a license file's (see `lib/keygen_certificate.ts`) with
 * `-----BEGIN MACHINE FILE-----` framing, the signature over
 * `"machine/" + enc`, and AES-256-GCM under SHA-256 of the license key
 * followed by the machine's fingerprint. Its dataset is the JSON:API
 * machine (`data.attributes.fingerprint`, `platform`, `hostname`, `ip`)
 * with `meta.issued`, `meta.expiry` and `meta.ttl`.
 *
 * As keygen-go's `MachineFile.Decrypt`, only encrypted files unlock
 * (`aes-256-gcm+ed25519`, and here also the RSA variants): a `base64+*`
 * file would not need the license key. The module never reads the clock:
 * callers pass `now`.
 *
 * @module
 */

import { MalformedLicenseFileError, UnsupportedAlgorithmError } from "./errors.ts";
import {
  type CertificateAlgorithm,
  type CertificateKind,
  type CertificateMeta,
  checkValidity,
  isRecord,
  malformed,
  openCertificate,
  parseCertificate,
  parseDataset,
  type PublicKey,
  readMeta,
} from "./keygen_certificate.ts";

/** Machine file algorithms Relay accepts: the encrypted ones. */
export const MACHINE_FILE_ALGORITHMS: readonly CertificateAlgorithm[] = [
  "aes-256-gcm+ed25519",
  "aes-256-gcm+rsa-pss-sha256",
  "aes-256-gcm+rsa-sha256",
];

/** Machine files: `-----BEGIN MACHINE FILE-----`, signed over `machine/` + enc. */
export const MACHINE_FILE: CertificateKind = {
  label: "MACHINE FILE",
  prefix: "machine",
  noun: "Machine file",
  keyCheck: "check that the machine file was issued by the Keygen account this Relay was built for",
};

/** A verified, decrypted machine file. */
export interface MachineFile extends CertificateMeta {
  /** The machine's id (`data.id`). */
  id: string;
  /** The certificate's `alg`. */
  algorithm: CertificateAlgorithm;
  /** The machine's fingerprint (`data.attributes.fingerprint`). */
  fingerprint: string;
  /** `data.attributes.platform`, `hostname` and `ip`; "" when null or absent. */
  platform: string;
  hostname: string;
  ip: string;
}

/** Inputs of {@link verifyMachineFile}. */
export interface VerifyMachineFileOptions {
  /** The Keygen account's public key. */
  publicKey: PublicKey;
  /** The license key of the machine's license. */
  licenseKey: string;
  /** The fingerprint the file was encrypted for: this machine's. */
  fingerprint: string;
  /** The current time, in unix seconds. */
  now: number;
  /** How far `meta.issued` may lie ahead of `now`; default 5 minutes. */
  maxClockDriftMs?: number;
}

/**
 * Verifies the signature, decrypts with the license key and fingerprint,
 * reads the machine and checks issue and expiry times against `now`.
 *
 * @throws {MalformedLicenseFileError} not a machine file, or its dataset is not Keygen's.
 * @throws {UnsupportedAlgorithmError} an unencrypted or unknown `alg`.
 * @throws {LicenseFileNotGenuineError} the signature does not verify.
 * @throws {WrongLicenseKeyError} the key and fingerprint do not decrypt it.
 * @throws {LicenseFileIssuedInFutureError} issued more than the drift ahead of `now`.
 * @throws {LicenseFileExpiredError} its `meta.expiry` has passed.
 */
export async function verifyMachineFile(
  certificate: string | Uint8Array,
  options: VerifyMachineFileOptions,
): Promise<MachineFile> {
  const fields = parseCertificate(certificate, MACHINE_FILE);
  const algorithm = MACHINE_FILE_ALGORITHMS.find((known) => known === fields.alg);
  if (!algorithm) {
    throw new UnsupportedAlgorithmError(
      fields.alg.startsWith("base64+")
        ? `Machine file is not encrypted ("${fields.alg}"); check it out from Keygen encrypted`
        : `Machine file algorithm "${fields.alg}" is not supported; Relay supports ` +
          MACHINE_FILE_ALGORITHMS.join(", "),
    );
  }
  const bytes = await openCertificate({ ...fields, algorithm }, {
    publicKey: options.publicKey,
    secret: options.licenseKey + options.fingerprint,
    kind: MACHINE_FILE,
  });
  const file = readDataset(bytes, algorithm);
  checkValidity(file, { ...options, kind: MACHINE_FILE });
  return file;
}

function readDataset(bytes: Uint8Array, algorithm: CertificateAlgorithm): MachineFile {
  const { data, meta } = parseDataset(bytes, MACHINE_FILE);
  const { id, type, attributes } = isRecord(data) ? data : {};
  if (typeof id !== "string" || id === "") {
    throw malformed(MACHINE_FILE, "its dataset has no data.id");
  }
  if (type !== "machines") {
    throw malformed(MACHINE_FILE, "its data is not a machine");
  }
  const attribute = (name: string, required = false): string => {
    const value = isRecord(attributes) ? attributes[name] : undefined;
    if (typeof value === "string" && (value !== "" || !required)) return value;
    if (value == null && !required) return "";
    throw new MalformedLicenseFileError(
      `Machine file is malformed: its data.attributes.${name} is not a string; ` +
        "check that it is an unaltered Keygen machine file",
    );
  };
  return {
    id,
    algorithm,
    fingerprint: attribute("fingerprint", true),
    platform: attribute("platform"),
    hostname: attribute("hostname"),
    ip: attribute("ip"),
    ...readMeta(meta, MACHINE_FILE),
  };
}
