/**
 * The cryptography of Keygen's signed files, on WebCrypto alone: the
 * vendor's public key, the signature over `"<prefix>/" + enc`, and the
 * AES-256-GCM decryption under SHA-256 of a secret. Shared by the client
 * (`./license_file.ts`, which must run on Node.js 20 too) and Relay itself
 * (`lib/keygen_certificate.ts`), which each put their own errors and
 * messages around it: this module decides only what is genuine.
 *
 * @module
 */

import { fromBase64, fromHex } from "./encoding.ts";

/** The `alg` values that Keygen issues and that can be verified here. */
export type CertificateAlgorithm =
  | "aes-256-gcm+ed25519"
  | "base64+ed25519"
  | "aes-256-gcm+rsa-pss-sha256"
  | "aes-256-gcm+rsa-sha256"
  | "base64+rsa-pss-sha256"
  | "base64+rsa-sha256";

/** Every supported {@link CertificateAlgorithm}, Keygen's default first. */
export const CERTIFICATE_ALGORITHMS: readonly CertificateAlgorithm[] = [
  "aes-256-gcm+ed25519",
  "base64+ed25519",
  "aes-256-gcm+rsa-pss-sha256",
  "aes-256-gcm+rsa-sha256",
  "base64+rsa-pss-sha256",
  "base64+rsa-sha256",
];

/** The vendor's public key, imported once and reused for many files. */
export type VendorKey =
  | { kind: "ed25519"; key: CryptoKey }
  | { kind: "rsa"; pss: CryptoKey; pkcs1: CryptoKey; modulusBits: number };

const PEM = /^-----BEGIN (RSA )?PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END \1PUBLIC KEY-----$/;
/** DER AlgorithmIdentifier of rsaEncryption with NULL parameters. */
const RSA_ALGORITHM_ID = "300d06092a864886f70d0101010500";
const utf8 = new TextEncoder();

/**
 * Imports a Keygen public key: Ed25519 as 64 hex digits, or RSA as PEM
 * (`PUBLIC KEY` or `RSA PUBLIC KEY`); `format` says which it looked like.
 * Null when the text is neither.
 *
 * @throws the WebCrypto or decoding error when the text looks like a key of
 *   that format but is not a valid one.
 */
export async function importVendorKey(
  text: string,
): Promise<{ key: VendorKey; format: "hex" | "pem" } | null> {
  const trimmed = text.trim();
  if (/^[0-9a-f]{64}$/i.test(trimmed)) {
    const key = await verifyKey("raw", fromHex(trimmed), "Ed25519");
    return { key: { kind: "ed25519", key }, format: "hex" };
  }
  const pem = PEM.exec(trimmed);
  if (!pem) return null;
  const der = fromBase64(pem[2]);
  const spki = pem[1] ? wrapPkcs1(der) : der;
  const pss = await verifyKey("spki", spki, { name: "RSA-PSS", hash: "SHA-256" });
  const pkcs1 = await verifyKey("spki", spki, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" });
  const { modulusLength } = pss.algorithm as RsaHashedKeyAlgorithm;
  return { key: { kind: "rsa", pss, pkcs1, modulusBits: modulusLength }, format: "pem" };
}

/** Whether a file signed with `algorithm` can be verified with `key` (Ed25519 or RSA). */
export function keyFitsAlgorithm(key: VendorKey, algorithm: CertificateAlgorithm): boolean {
  return algorithm.endsWith("+ed25519") === (key.kind === "ed25519");
}

/**
 * Whether `sig` (base64) signs the UTF-8 bytes of `"<prefix>/" + enc` with
 * `key`, as `algorithm` says; false too for a `sig` that is not base64 and
 * for a key that does not fit the algorithm.
 */
export async function isGenuine(
  key: VendorKey,
  { algorithm, prefix, enc, sig }: {
    algorithm: CertificateAlgorithm;
    prefix: "license" | "machine";
    enc: string;
    sig: string;
  },
): Promise<boolean> {
  if (!keyFitsAlgorithm(key, algorithm)) return false;
  const [params, cryptoKey]: [AlgorithmIdentifier | RsaPssParams, CryptoKey] =
    key.kind === "ed25519" ? ["Ed25519", key.key] : algorithm.endsWith("+rsa-pss-sha256")
      // Keygen signs with the maximum salt length: emLen - hLen - 2.
      ? [{ name: "RSA-PSS", saltLength: Math.ceil((key.modulusBits - 1) / 8) - 34 }, key.pss]
      : ["RSASSA-PKCS1-v1_5", key.pkcs1];
  try {
    return await crypto.subtle.verify(
      params,
      cryptoKey,
      fromBase64(sig),
      utf8.encode(`${prefix}/${enc}`),
    );
  } catch {
    // A sig that is not base64, or that WebCrypto refuses outright.
    return false;
  }
}

/**
 * Decrypts `ciphertext` sealed by AES-256-GCM (`iv`, `tag`) under SHA-256
 * of `secret`.
 *
 * @throws the WebCrypto error when `secret` does not open it.
 */
export async function decryptWithSecret(
  { ciphertext, iv, tag }: { ciphertext: Uint8Array; iv: Uint8Array<ArrayBuffer>; tag: Uint8Array },
  secret: string,
): Promise<Uint8Array> {
  const sealed = new Uint8Array(ciphertext.length + tag.length);
  sealed.set(ciphertext);
  sealed.set(tag, ciphertext.length);
  const digest = await crypto.subtle.digest("SHA-256", utf8.encode(secret));
  const key = await crypto.subtle.importKey("raw", digest, "AES-GCM", false, ["decrypt"]);
  return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv }, key, sealed));
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
