/**
 * Vendor operations on the license pool: verify and add license files, remove,
 * list and inspect licenses. Each change of state, with its audit rows, is one
 * transaction; verification (async WebCrypto) happens before it, so one bad
 * file means nothing is added.
 *
 * @module
 */

import { EntityType, EventType } from "./audit.ts";
import {
  LicenseExistsError,
  LicenseLeasedError,
  LicenseNotFoundError,
  PoolNotFoundError,
  RelayError,
  withContext,
} from "./errors.ts";
import { type LicenseFile, type PublicKey, verifyLicenseFile } from "./license_file.ts";
import type { LicenseInfo, Pool, Store } from "./store.ts";

/** A license file as read from disk, with the key that decrypts it. */
export interface LicenseInput {
  /** Where it came from, for messages (usually the path). */
  source: string;
  /** The certificate bytes, stored as they are. */
  certificate: Uint8Array;
  /** The license key given for it. */
  key: string;
}

/** A license file that passed verification. */
export interface VerifiedLicense {
  source: string;
  certificate: Uint8Array;
  license: LicenseFile;
}

/** A license that {@link addLicenses} stored. */
export interface AddedLicense {
  /** Row id. */
  id: number;
  /** Keygen license id. */
  guid: string;
  /** Pool name, or null for the default pool. */
  pool: string | null;
}

/** Options of {@link verifyLicenses}. */
export interface VerifyLicensesOptions {
  publicKey: PublicKey;
  now: Date;
  /** Called after each file with the number verified so far. */
  onProgress?: (done: number) => void;
}

/**
 * Verifies every input (signature, decryption, dates). Stops at the first
 * failure, whose message is prefixed with the input's source.
 *
 * @throws {RelayError} any refusal of `verifyLicenseFile()`.
 */
export async function verifyLicenses(
  inputs: readonly LicenseInput[],
  options: VerifyLicensesOptions,
): Promise<VerifiedLicense[]> {
  const verified: VerifiedLicense[] = [];
  for (const input of inputs) {
    try {
      const license = await verifyLicenseFile(input.certificate, {
        publicKey: options.publicKey,
        licenseKey: input.key,
        now: options.now,
      });
      verified.push({ source: input.source, certificate: input.certificate, license });
    } catch (error) {
      if (error instanceof RelayError) {
        throw withContext(error, `Cannot add "${input.source}"`);
      }
      throw error;
    }
    options.onProgress?.(verified.length);
  }
  return verified;
}

/**
 * Stores verified licenses in one transaction, in the given order, creating
 * the pool if it does not exist. Records `pool.added` and `license.added`.
 *
 * @throws {LicenseExistsError} a license (same id, key or file) is already
 *   stored, or appears twice in `licenses`; nothing is added.
 */
export function addLicenses(
  store: Store,
  licenses: readonly VerifiedLicense[],
  options: { pool?: string; now: Date },
): AddedLicense[] {
  const now = unixSeconds(options.now);
  return store.transaction(() => {
    let pool: Pool | null = null;
    if (options.pool !== undefined) {
      pool = store.poolByName(options.pool) ?? store.insertPool(options.pool, now);
    }
    const added: AddedLicense[] = [];
    for (const { source, certificate, license } of licenses) {
      const existing = store.conflictingLicense(license.id, license.key, certificate);
      if (existing !== undefined) {
        // The reference Relay's wording, which scripts may match on.
        throw new LicenseExistsError(
          `license with the provided key already exists (license "${existing}", file "${source}")`,
        );
      }
      const id = store.insertLicense({
        guid: license.id,
        file: certificate,
        key: license.key,
        poolId: pool?.id ?? null,
        fileIssuedAt: unixSeconds(license.issued),
        fileExpiresAt: license.fileExpiry ? unixSeconds(license.fileExpiry) : null,
        expiresAt: license.expiry ? unixSeconds(license.expiry) : null,
      }, now);
      store.audit(EventType.licenseAdded, EntityType.license, id, pool?.id ?? null, now);
      added.push({ id, guid: license.id, pool: pool?.name ?? null });
    }
    return added;
  });
}

/**
 * Deletes licenses by Keygen id in one transaction and records
 * `license.removed` for each. A license leased right now is deleted only with
 * `force`, which also records `license.released`.
 *
 * @throws {LicenseNotFoundError} an id is unknown; nothing is deleted.
 * @throws {LicenseLeasedError} a license is leased and `force` is not set;
 *   nothing is deleted.
 */
export function removeLicenses(
  store: Store,
  guids: readonly string[],
  options: { force?: boolean; now: Date },
): LicenseInfo[] {
  const now = unixSeconds(options.now);
  return store.transaction(() => {
    const removed: LicenseInfo[] = [];
    for (const guid of new Set(guids)) {
      const license = findLicense(store, guid);
      if (license.nodeId !== null) {
        if (!options.force) {
          throw new LicenseLeasedError(
            `License "${guid}" is leased by node "${license.nodeFingerprint}"; wait for the node to release it, or pass --force to delete it anyway`,
          );
        }
        store.audit(EventType.licenseReleased, EntityType.license, license.id, license.poolId, now);
      }
      store.deleteLicense(license.id);
      store.audit(EventType.licenseRemoved, EntityType.license, license.id, license.poolId, now);
      removed.push(license);
    }
    return removed;
  });
}

/**
 * Lists licenses in the order they were added: all of them, or those of one
 * pool.
 *
 * @throws {PoolNotFoundError} `pool` names no pool.
 */
export function listLicenses(store: Store, options: { pool?: string } = {}): LicenseInfo[] {
  if (options.pool === undefined) return store.licenses();
  const pool = store.poolByName(options.pool);
  // The reference Relay's wording, which scripts may match on.
  if (!pool) throw new PoolNotFoundError("pool not found");
  return store.licenses({ poolId: pool.id });
}

/**
 * One license by Keygen id.
 *
 * @throws {LicenseNotFoundError} no license has that id.
 */
export function findLicense(store: Store, guid: string): LicenseInfo {
  const license = store.licenseByGuid(guid);
  if (!license) throw new LicenseNotFoundError(`License "${guid}" not found`);
  return license;
}

/** Whole unix seconds of a date. */
export function unixSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}
