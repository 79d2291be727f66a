/**
 * Fixture minter: issues license files (and machine files, for node-locking)
 * in exactly Keygen's format, offline, with a key pair generated on the spot. Tests import it; as a script it
 * writes a directory of files for manual runs and benchmarks.
 *
 * ```sh
 * deno run --allow-write scripts/mint.ts --out DIR --count N [--algorithm A] [--ttl S|none] [--expired] [--rsa]
 *   [--max-machines N] [--max-users N]
 * deno run --allow-write scripts/mint.ts --out DIR --machine FINGERPRINT [--platform P] [--hostname H] [--ip IP]
 * deno task mint --help
 * ```
 *
 * @module
 */

import { InvalidArgumentError } from "commander";
import { LICENSE_FILE_ALGORITHMS, type LicenseFileAlgorithm } from "../lib/license_file.ts";
import { licenseDataset } from "./license_dataset.ts";
import { machineDataset, type MachineMintOptions } from "./machine_dataset.ts";
import {
  CONSOLE,
  oneOf,
  type Parsed,
  parseScriptArgs,
  positiveInteger,
  repeatable,
  scriptCommand,
  type ScriptOutput,
} from "./command_line.ts";

/** A signing key pair and its public key as Relay takes it (`--public-key`). */
export type KeyPair =
  | { kind: "ed25519"; privateKey: CryptoKey; publicKeyText: string }
  | { kind: "rsa"; pss: CryptoKey; pkcs1: CryptoKey; publicKeyText: string };

/** What to put in a minted license file; every field has a default. */
export interface MintOptions {
  /** License id; default `crypto.randomUUID()`. */
  id?: string;
  /** License key; default a random Keygen-style key like `9E32DD-D8CC22-771926-C2D834-C506DC-V3`. */
  key?: string;
  /** Certificate `alg`; default `aes-256-gcm+ed25519`, or `aes-256-gcm+rsa-pss-sha256` for an RSA key pair. */
  algorithm?: LicenseFileAlgorithm;
  /** `meta.issued`; default now. */
  issued?: Date;
  /** `meta.ttl` in seconds, null for a file that never expires; default 2592000 (30 days). */
  ttl?: number | null;
  /** The license's own expiry (`data.attributes.expiry`); default null. */
  expiry?: Date | null;
  /** Codes of entitlements to include; default none. */
  entitlements?: string[];
  /** `data.attributes.maxMachines`; default null. */
  maxMachines?: number | null;
  /** `data.attributes.maxUsers`; default null. */
  maxUsers?: number | null;
}

/** Keygen's default license file time to live: 30 days. */
export const DEFAULT_TTL_SECONDS = 2_592_000;

const utf8 = new TextEncoder();

/** Generates an Ed25519 key pair (public key as 64 hex) or an RSA-2048 one (public key as SPKI PEM). */
export async function generateKeyPair(kind: "ed25519" | "rsa"): Promise<KeyPair> {
  if (kind === "ed25519") {
    const usages: KeyUsage[] = ["sign", "verify"];
    const pair = await crypto.subtle.generateKey("Ed25519", true, usages) as CryptoKeyPair;
    const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    return { kind, privateKey: pair.privateKey, publicKeyText: raw.toHex() };
  }
  const hash = "SHA-256";
  const publicExponent = new Uint8Array([1, 0, 1]);
  const pair = await crypto.subtle.generateKey(
    { name: "RSA-PSS", modulusLength: 2048, publicExponent, hash },
    true,
    ["sign", "verify"],
  );
  // The same private key, usable for RSASSA-PKCS1-v1_5 too.
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", pair.privateKey);
  const pkcs1Params = { name: "RSASSA-PKCS1-v1_5", hash };
  const pkcs1 = await crypto.subtle.importKey("pkcs8", pkcs8, pkcs1Params, false, ["sign"]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
  const body = spki.toBase64().match(/.{1,64}/g)!.join("\n");
  const publicKeyText = `-----BEGIN PUBLIC KEY-----\n${body}\n-----END PUBLIC KEY-----\n`;
  return { kind, pss: pair.privateKey, pkcs1, publicKeyText };
}

/** Mints a license file signed by `keyPair`, shaped like the ones Keygen issues. */
export async function mintLicenseFile(
  keyPair: KeyPair,
  options: MintOptions = {},
): Promise<{ id: string; key: string; certificate: string }> {
  const id = options.id ?? crypto.randomUUID();
  const key = options.key ?? randomLicenseKey();
  const algorithm = options.algorithm ??
    (keyPair.kind === "ed25519" ? "aes-256-gcm+ed25519" : "aes-256-gcm+rsa-pss-sha256");
  const dataset = JSON.stringify(licenseDataset(id, key, {
    ...options,
    issued: options.issued ?? new Date(),
    ttl: options.ttl === undefined ? DEFAULT_TTL_SECONDS : options.ttl,
  }));
  return { id, key, certificate: await sealCertificate(keyPair, algorithm, key, dataset) };
}

/**
 * Encrypts (under `licenseKey`) or encodes any dataset text as `algorithm`
 * says, signs it and frames it. Tests use it for malformed datasets.
 */
export async function sealCertificate(
  keyPair: KeyPair,
  algorithm: LicenseFileAlgorithm,
  licenseKey: string,
  dataset: string,
  kind: CertificateFileKind = "license",
): Promise<string> {
  const enc = algorithm.startsWith("aes-256-gcm+")
    ? await encrypt(licenseKey, dataset)
    : utf8.encode(dataset).toBase64();
  const sig = await signEnc(keyPair, algorithm, enc, kind);
  return frameCertificate(JSON.stringify({ enc, sig, alg: algorithm }), kind);
}

/**
 * Which file a certificate is: a license file (signed over `license/` +
 * enc, framed `LICENSE FILE`) or a machine file (`machine/`, `MACHINE FILE`).
 */
export type CertificateFileKind = "license" | "machine";

/** Signs `"<kind>/" + enc` as `algorithm` says; returns the base64 `sig`. */
export async function signEnc(
  keyPair: KeyPair,
  algorithm: LicenseFileAlgorithm,
  enc: string,
  kind: CertificateFileKind = "license",
): Promise<string> {
  if (algorithm.endsWith("+ed25519") !== (keyPair.kind === "ed25519")) {
    throw new Error(`A ${keyPair.kind} key pair cannot sign ${algorithm}`);
  }
  const data = utf8.encode(`${kind}/${enc}`);
  const signature = keyPair.kind === "ed25519"
    ? await crypto.subtle.sign("Ed25519", keyPair.privateKey, data)
    : algorithm.endsWith("+rsa-pss-sha256")
    // Keygen signs with the maximum salt length: 256 - 32 - 2 bytes for RSA-2048.
    ? await crypto.subtle.sign({ name: "RSA-PSS", saltLength: 222 }, keyPair.pss, data)
    : await crypto.subtle.sign("RSASSA-PKCS1-v1_5", keyPair.pkcs1, data);
  return new Uint8Array(signature).toBase64();
}

/** Frames certificate JSON text as Keygen does: base64 wrapped at 60 columns, header and footer. */
export function frameCertificate(json: string, kind: CertificateFileKind = "license"): string {
  return frameLicenseFile(utf8.encode(json).toBase64(), kind);
}

/** Frames a license (or machine) file's base64 body as Keygen does: wrapped at 60 columns, header and footer. */
export function frameLicenseFile(base64: string, kind: CertificateFileKind = "license"): string {
  const body = (base64.match(/.{1,60}/g) ?? []).join("\n");
  const label = `${kind.toUpperCase()} FILE`;
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

async function encrypt(licenseKey: string, dataset: string): Promise<string> {
  const secret = await crypto.subtle.digest("SHA-256", utf8.encode(licenseKey));
  const key = await crypto.subtle.importKey("raw", secret, "AES-GCM", false, ["encrypt"]);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const plain = utf8.encode(dataset);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, plain));
  const ciphertext = sealed.subarray(0, sealed.length - 16);
  const tag = sealed.subarray(sealed.length - 16);
  return `${ciphertext.toBase64()}.${iv.toBase64()}.${tag.toBase64()}`;
}

export type { MachineMintOptions } from "./machine_dataset.ts";

/**
 * Mints a machine file signed by `keyPair`, as Keygen's "check out machine"
 * action issues it (encrypted under the license key followed by the
 * fingerprint, signed over `machine/` + enc); returns it with its id and
 * license key.
 */
export async function mintMachineFile(
  keyPair: KeyPair,
  options: MachineMintOptions,
): Promise<{ id: string; licenseKey: string; certificate: string }> {
  const id = options.id ?? crypto.randomUUID();
  const licenseKey = options.licenseKey ?? randomLicenseKey();
  const algorithm = options.algorithm ??
    (keyPair.kind === "ed25519" ? "aes-256-gcm+ed25519" : "aes-256-gcm+rsa-pss-sha256");
  const dataset = JSON.stringify(machineDataset(id, {
    ...options,
    issued: options.issued ?? new Date(),
    ttl: options.ttl === undefined ? DEFAULT_TTL_SECONDS : options.ttl,
  }));
  const secret = licenseKey + (options.encryptedFor ?? options.fingerprint);
  const certificate = await sealCertificate(keyPair, algorithm, secret, dataset, "machine");
  return { id, licenseKey, certificate };
}

/** A random license key in Keygen's format, like `9E32DD-D8CC22-771926-C2D834-C506DC-V3`. */
export function randomLicenseKey(): string {
  const hex = crypto.getRandomValues(new Uint8Array(15)).toHex().toUpperCase();
  return `${hex.match(/.{6}/g)!.join("-")}-V3`;
}

/** What the mint script was asked to do. */
export interface MintCliOptions {
  out: string;
  count: number;
  algorithm: LicenseFileAlgorithm;
  kind: "ed25519" | "rsa";
  /** File time to live in seconds; null: the files never expire. */
  ttl: number | null;
  expired: boolean;
  entitlements: string[];
  /** `data.attributes.maxMachines` of every license file; null: none. */
  maxMachines: number | null;
  /** `data.attributes.maxUsers` of every license file; null: none. */
  maxUsers: number | null;
  /** Mint one machine file for this machine instead of license files (`--machine`). */
  machine?: {
    fingerprint: string;
    platform: string | null;
    hostname: string | null;
    ip: string | null;
  };
}

/**
 * Parses the mint script's command line; prints help or the error through
 * `output` when there is nothing to mint.
 */
export function parseMintArgs(
  args: string[],
  output: ScriptOutput = CONSOLE,
): Parsed<MintCliOptions> {
  const command = scriptCommand(
    "deno task mint",
    "Mints Keygen-format license files signed by a fresh key pair (offline).\n\n" +
      "Writes DIR/public_key (Ed25519 as 64 hex, or RSA as SPKI PEM, newline-terminated),\n" +
      "and for each license DIR/<id>.lic (the certificate) and DIR/<id>.key (the license\n" +
      "key, no trailing newline).",
    output,
  )
    .usage("--out DIR [options]")
    .requiredOption("--out <dir>", "directory to write into, created if missing")
    .option("--count <n>", "how many license files to mint", positiveInteger, 1)
    .option(
      "--algorithm <alg>",
      `one of: ${LICENSE_FILE_ALGORITHMS.join(", ")} ` +
        "(default aes-256-gcm+ed25519, or aes-256-gcm+rsa-pss-sha256 with --rsa)",
      oneOf(LICENSE_FILE_ALGORITHMS, "algorithm"),
    )
    .option("--rsa", "sign with an RSA-2048 key pair instead of Ed25519")
    .option(
      "--ttl <seconds|none>",
      "file time to live in seconds; none: never expires",
      parseTtl,
      DEFAULT_TTL_SECONDS,
    )
    .option("--expired", "issue the files so long ago that they have already expired")
    .option(
      "--entitlement <code>",
      "include an entitlement with this code (repeatable)",
      repeatable,
    )
    .option(
      "--max-machines <n>",
      "data.attributes.maxMachines of each license (default none)",
      positiveInteger,
    )
    .option(
      "--max-users <n>",
      "data.attributes.maxUsers of each license (default none)",
      positiveInteger,
    )
    .option(
      "--machine <fingerprint>",
      "mint one machine file for this fingerprint instead: DIR/relay.lic and its license key DIR/relay.key",
    )
    .option("--platform <os/arch>", "with --machine: the machine's platform, e.g. linux/amd64")
    .option("--hostname <name>", "with --machine: the machine's hostname")
    .option("--ip <address>", "with --machine: the machine's IP address");
  return parseScriptArgs(command, args, (values) => {
    const rsa = values.rsa === true;
    const algorithm = (values.algorithm as LicenseFileAlgorithm | undefined) ??
      (rsa ? "aes-256-gcm+rsa-pss-sha256" : "aes-256-gcm+ed25519");
    const kind = algorithm.endsWith("+ed25519") ? "ed25519" : "rsa";
    if (rsa && kind === "ed25519") {
      throw new InvalidArgumentError(`--rsa conflicts with --algorithm "${algorithm}"`);
    }
    const ttl = values.ttl === "none" ? null : values.ttl as number;
    const expired = values.expired === true;
    if (expired && ttl === null) {
      throw new InvalidArgumentError("--expired needs a ttl: without one a file never expires");
    }
    return {
      out: values.out as string,
      count: values.count as number,
      algorithm,
      kind,
      ttl,
      expired,
      entitlements: (values.entitlement as string[] | undefined) ?? [],
      maxMachines: (values.maxMachines as number | undefined) ?? null,
      maxUsers: (values.maxUsers as number | undefined) ?? null,
      ...(values.machine === undefined ? {} : {
        machine: {
          fingerprint: values.machine as string,
          platform: (values.platform as string | undefined) ?? null,
          hostname: (values.hostname as string | undefined) ?? null,
          ip: (values.ip as string | undefined) ?? null,
        },
      }),
    };
  });
}

/**
 * `--ttl`: a positive number of seconds, or `none` (kept as the text:
 * commander would turn a null value into an empty string).
 */
function parseTtl(text: string): number | "none" {
  if (text === "none") return text;
  try {
    return positiveInteger(text);
  } catch {
    throw new InvalidArgumentError("Expected a positive number of seconds, or none");
  }
}

/** Runs the CLI with `args`, printing through `print` and `printError`; returns the exit code. */
export async function main(
  args: string[],
  print: (text: string) => void = console.log,
  printError: (text: string) => void = console.error,
): Promise<number> {
  const parsed = parseMintArgs(args, { print, printError });
  if (parsed.kind === "exit") return parsed.code;
  const { out, count, algorithm, kind, ttl, expired, entitlements, machine } = parsed.options;
  const { maxMachines, maxUsers } = parsed.options;
  // An expired file was issued one ttl and one day ago.
  const issued = new Date(Date.now() - (expired ? (ttl ?? 0) * 1000 + 86_400_000 : 0));
  const keyPair = await generateKeyPair(kind);
  await Deno.mkdir(out, { recursive: true });
  await Deno.writeTextFile(`${out}/public_key`, keyPair.publicKeyText.trim() + "\n");
  const lifetime = ttl === null ? "no ttl" : `ttl ${ttl} s${expired ? ", expired" : ""}`;
  if (machine) {
    const file = await mintMachineFile(keyPair, { ...machine, algorithm, issued, ttl });
    await Deno.writeTextFile(`${out}/relay.lic`, file.certificate);
    await Deno.writeTextFile(`${out}/relay.key`, file.licenseKey);
    print(
      `Minted a machine file for ${machine.fingerprint} (${algorithm}, ${lifetime}) into ${out}`,
    );
    return 0;
  }
  for (let start = 0; start < count; start += 100) {
    const batch = Array.from({ length: Math.min(100, count - start) }, async () => {
      const file = await mintLicenseFile(keyPair, {
        algorithm,
        issued,
        ttl,
        entitlements,
        maxMachines,
        maxUsers,
      });
      await Deno.writeTextFile(`${out}/${file.id}.lic`, file.certificate);
      await Deno.writeTextFile(`${out}/${file.id}.key`, file.key);
    });
    await Promise.all(batch);
  }
  print(`Minted ${count} license file(s) (${algorithm}, ${lifetime}) into ${out}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
