/**
 * Node-locking: a Relay built for one licensed host (the reference Relay's
 * `internal/locker`). The build embeds a {@link NodeLock}; before it runs a
 * command, a locked Relay verifies the Keygen machine file of this host with
 * the embedded public key and refuses to run unless this host and the file
 * match every locked attribute.
 *
 * Pure: the machine file's bytes, the license key, the clock and the facts
 * about this host come in as parameters (`cli/node_lock.ts` reads them).
 *
 * @module
 */

import {
  LicenseFileExpiredError,
  LicenseFileIssuedInFutureError,
  LicenseFileNotGenuineError,
  NodeLockError,
  WrongLicenseKeyError,
} from "./errors.ts";
import { importPublicKey } from "./keygen_certificate.ts";
import { type MachineFile, verifyMachineFile } from "./machine_file.ts";

/**
 * What a build is locked to, as the reference's `BUILD_NODE_LOCKED_*`
 * variables give it; "" means not locked to that attribute. A build is
 * locked when it has both a public key and a fingerprint.
 */
export interface NodeLock {
  /** The Keygen account's public key (Ed25519 hex or RSA PEM); required. */
  readonly publicKey: string;
  /** The host's fingerprint (`relay fingerprint`); required. */
  readonly fingerprint: string;
  /** `GOOS/GOARCH`, e.g. `linux/amd64`. */
  readonly platform: string;
  /** The host's name. */
  readonly hostname: string;
  /** The host's private IPv4 address. */
  readonly ip: string;
  /** The address `relay serve` binds, which flags and env vars cannot change. */
  readonly addr: string;
  /** The port `relay serve` listens on, which flags and env vars cannot change. */
  readonly port: string;
  /** The secret `relay serve` signs responses with, which flags and env vars cannot change. */
  readonly signingSecret: string;
}

/** The build of a Relay that is not node-locked. */
export const UNLOCKED: NodeLock = {
  publicKey: "",
  fingerprint: "",
  platform: "",
  hostname: "",
  ip: "",
  addr: "",
  port: "",
  signingSecret: "",
};

/** Whether the build is node-locked: it has a public key and a fingerprint. */
export function isLocked(lock: NodeLock): boolean {
  return lock.publicKey !== "" && lock.fingerprint !== "";
}

/**
 * What a locked build adds to its version, as the reference does:
 * `+node-locked`, then the fingerprint's first and last 4 characters
 * (`+node-locked.3646..bf08`) unless it is shorter than 16. "" when unlocked.
 */
export function lockDesignation(lock: NodeLock): string {
  if (!isLocked(lock)) return "";
  const fp = lock.fingerprint;
  return fp.length >= 16 ? `+node-locked.${fp.slice(0, 4)}..${fp.slice(-4)}` : "+node-locked";
}

/** The host attributes a build is locked to, in the order they are checked. */
export function lockedAttributes(
  lock: NodeLock,
): ("fingerprint" | "platform" | "hostname" | "ip")[] {
  const attributes = ["fingerprint", "platform", "hostname", "ip"] as const;
  return attributes.filter((name) => lock[name] !== "");
}

/**
 * The facts about this host, read only when the lock needs them. Each may
 * throw; the error says what could not be read.
 */
export interface HostReader {
  /** This machine's fingerprint (machineid's `ProtectedID("keygen-relay")`). */
  fingerprint(): Promise<string>;
  /** `GOOS/GOARCH` of this process. */
  platform(): string;
  /** This host's name. */
  hostname(): Promise<string>;
  /** This host's private IPv4 address; throws when it has none. */
  privateIp(): Promise<string>;
}

/** Inputs of {@link unlock}. */
export interface UnlockOptions {
  /** Reads the machine file; its errors become "machine file could not be read". */
  readMachineFile: () => Promise<Uint8Array>;
  /** The license key of the machine's license; never shown in any message. */
  licenseKey: string;
  /** This host. */
  host: HostReader;
  /** The current time, in unix seconds. */
  now: number;
}

/**
 * Unlocks a locked build on this host: checks this host's fingerprint,
 * reads, verifies and decrypts the machine file, checks its dates, then
 * that the file and this host match every locked attribute. Returns the
 * machine file.
 *
 * Messages are the reference Relay's (`machine file fingerprint mismatch`,
 * `machine file is expired`, …), with a reason after a colon.
 *
 * @throws {NodeLockError} any check fails.
 */
export async function unlock(lock: NodeLock, options: UnlockOptions): Promise<MachineFile> {
  const { host } = options;
  if (options.licenseKey === "") throw new NodeLockError("license key is required");
  const fingerprint = await hostFact("fingerprint", () => host.fingerprint());
  // Before the file: on another machine, say so rather than "could not be decrypted".
  if (fingerprint !== lock.fingerprint) throw hostMismatch("fingerprint");

  let certificate: Uint8Array;
  try {
    certificate = await options.readMachineFile();
  } catch (error) {
    throw new NodeLockError(`machine file could not be read: ${reason(error)}`, { cause: error });
  }
  let file: MachineFile;
  try {
    file = await verifyMachineFile(certificate, {
      publicKey: await importPublicKey(lock.publicKey),
      licenseKey: options.licenseKey,
      fingerprint,
      now: options.now,
    });
  } catch (error) {
    throw new NodeLockError(`${machineFileProblem(error)}: ${reason(error)}`, { cause: error });
  }

  if (file.fingerprint !== lock.fingerprint) throw fileMismatch("fingerprint");
  if (lock.platform !== "") {
    if (host.platform() !== lock.platform) throw hostMismatch("platform");
    if (file.platform !== lock.platform) throw fileMismatch("platform");
  }
  if (lock.hostname !== "") {
    if (await hostFact("hostname", () => host.hostname()) !== lock.hostname) {
      throw hostMismatch("hostname");
    }
    if (file.hostname !== lock.hostname) throw fileMismatch("hostname");
  }
  if (lock.ip !== "") {
    if (await hostFact("ip", () => host.privateIp()) !== lock.ip) throw hostMismatch("ip");
    if (file.ip !== lock.ip) throw fileMismatch("ip");
  }
  return file;
}

/** The reference's wording for each way a machine file fails verification. */
function machineFileProblem(error: unknown): string {
  if (error instanceof LicenseFileNotGenuineError) return "machine file is not genuine";
  if (error instanceof LicenseFileIssuedInFutureError) {
    return "machine file is desynced with system clock";
  }
  if (error instanceof LicenseFileExpiredError) return "machine file is expired";
  if (error instanceof WrongLicenseKeyError) return "machine file could not be decrypted";
  return "machine file could not be verified";
}

/** Reads one fact about this host: "machine could not determine <what>: <reason>". */
async function hostFact(what: string, read: () => Promise<string>): Promise<string> {
  try {
    return await read();
  } catch (error) {
    throw new NodeLockError(`machine could not determine ${what}: ${reason(error)}`, {
      cause: error,
    });
  }
}

function hostMismatch(attribute: string): NodeLockError {
  return new NodeLockError(
    `machine file ${attribute} mismatch: this machine's ${attribute} is not the one Relay is locked to`,
  );
}

function fileMismatch(attribute: string): NodeLockError {
  return new NodeLockError(
    `machine file ${attribute} mismatch: the machine file's ${attribute} is not the one Relay is locked to`,
  );
}

/** An error's message with a lowercase first letter, to follow a colon. */
function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.charAt(0).toLowerCase() + message.slice(1);
}
