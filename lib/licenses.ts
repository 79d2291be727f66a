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
  SeatLimitError,
  withContext,
} from "./errors.ts";
import { type LicenseFile, type PublicKey, verifyLicenseFile } from "./license_file.ts";
import { holderName, holderOfKey } from "./holders.ts";
import { expireLease } from "./leases.ts";
import { unixSeconds } from "./time.ts";
import type { LicenseInfo, Pool, Store, Tx } from "./storage/store.ts";

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
  /** The license was already stored and its file was replaced with this newer one. */
  renewed: boolean;
}

/** Options of {@link verifyLicenses}. */
export interface VerifyLicensesOptions {
  publicKey: PublicKey;
  /** Current unix time in seconds. */
  now: number;
  /** Seats each license will have (`--seats`); above 1, checked against its file's limits. */
  seats?: number;
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
      if (options.seats !== undefined && options.seats > 1) checkSeats(license, options.seats);
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
 * Checks that a license file allows `seats` holders at once: at most every
 * limit it states (`maxMachines`, `maxUsers`: a seat may go to a node or a
 * user), and that it states at least one.
 *
 * @throws {SeatLimitError} it states no limit, or a smaller one.
 */
export function checkSeats(
  license: Pick<LicenseFile, "maxMachines" | "maxUsers">,
  seats: number,
): void {
  const { maxMachines, maxUsers } = license;
  if (maxMachines === null && maxUsers === null) {
    throw new SeatLimitError(
      `--seats ${seats} needs a license that states how many machines or users it allows; ` +
        "this one states neither (maxMachines and maxUsers are null)",
    );
  }
  for (const [limit, name] of [[maxMachines, "machines"], [maxUsers, "users"]] as const) {
    if (limit !== null && seats > limit) {
      throw new SeatLimitError(
        `--seats ${seats} is more than the license allows: at most ${limit} ${name}`,
      );
    }
  }
}

/**
 * Stores verified licenses in one transaction, in the given order, creating
 * the pool if it does not exist. Records `pool.added` and `license.added`.
 *
 * A file of a license already stored in the same pool, with the same key and
 * a later `meta.issued`, renews it: the file and its dates are replaced in
 * place, and the license keeps its row, pool and lease (`license.renewed`);
 * a multi-seat license's seat rows take the new dates and keep their leases.
 *
 * With `seats` (N > 1), each license is stored as a multi-seat license: its
 * row and N-1 seat rows (`Tx.insertSeats`), so N holders lease it at once;
 * check the files' limits first ({@link checkSeats}). A renewal keeps the
 * license's seats: changing them is refused (delete it and add it again).
 *
 * @throws {LicenseExistsError} a license (same id, key or file) is already
 *   stored and this is not a renewal of it (an older or the same file, another
 *   pool, another key), or appears twice in `licenses`; nothing is added.
 * @throws {SeatLimitError} `seats` differs from the seats of a license it
 *   would renew, or the renewing file allows fewer; nothing is added.
 */
export function addLicenses(
  store: Store,
  licenses: readonly VerifiedLicense[],
  options: { pool?: string; now: number; seats?: number },
): Promise<AddedLicense[]> {
  const { now } = options;
  return store.transaction(async (tx) => {
    let pool: Pool | null = null;
    if (options.pool !== undefined) {
      pool = await tx.poolByName(options.pool) ?? await insertPool(tx, { name: options.pool, now });
    }
    const added: AddedLicense[] = [];
    for (const { source, certificate, license } of licenses) {
      const existing = await tx.conflictingLicense({
        guid: license.id,
        key: license.key,
        file: certificate,
      });
      if (existing !== undefined) {
        const renewed = await renewIn(tx, {
          certificate,
          license,
          poolId: pool?.id ?? null,
          seats: options.seats,
          now,
        });
        if (renewed !== undefined) {
          added.push({ id: renewed, guid: license.id, pool: pool?.name ?? null, renewed: true });
          continue;
        }
        // The reference Relay's wording, which scripts may match on.
        throw new LicenseExistsError(
          `license with the provided key already exists (license "${existing}", file "${source}")`,
        );
      }
      const id = await tx.insertLicense({
        guid: license.id,
        file: certificate,
        key: license.key,
        poolId: pool?.id ?? null,
        fileIssuedAt: unixSeconds(license.issued),
        fileExpiresAt: license.fileExpiry ? unixSeconds(license.fileExpiry) : null,
        expiresAt: license.expiry ? unixSeconds(license.expiry) : null,
        maxMachines: license.maxMachines,
        maxUsers: license.maxUsers,
      }, now);
      const seats = options.seats ?? 1;
      if (seats > 1) await tx.insertSeats(id, seats - 1, now);
      await tx.audit({
        event: EventType.licenseAdded,
        entity: EntityType.license,
        entityId: id,
        poolId: pool?.id ?? null,
        now,
      });
      added.push({ id, guid: license.id, pool: pool?.name ?? null, renewed: false });
    }
    return added;
  });
}

/**
 * Renews the stored license of `license.id` with `certificate` if this is a
 * renewal (same pool, same key, issued later); returns its row id, or
 * undefined when it is not one. A license whose stored file has no recorded
 * issue date (added by Keygen Relay) cannot be compared, so is not renewed.
 *
 * @throws {SeatLimitError} `seats` is given and differs from the license's,
 *   or the new file allows fewer holders than the license has seats.
 */
async function renewIn(
  tx: Tx,
  { certificate, license, poolId, seats, now }: {
    certificate: Uint8Array;
    license: LicenseFile;
    poolId: number | null;
    seats: number | undefined;
    now: number;
  },
): Promise<number | undefined> {
  const stored = await tx.renewableLicense(license.id);
  const issued = unixSeconds(license.issued);
  if (
    stored === undefined || stored.key !== license.key || stored.poolId !== poolId ||
    stored.fileIssuedAt === null || issued <= stored.fileIssuedAt
  ) {
    return undefined;
  }
  const storedSeats = (await tx.licenseSeats(stored.id)).length;
  if (seats !== undefined && storedSeats !== seats) {
    throw new SeatLimitError(
      `License "${license.id}" has ${storedSeats} seat(s); a renewal cannot change them to ` +
        `${seats}: delete the license (relay del) and add it again with --seats`,
    );
  }
  // The new file must still allow every seat.
  if (storedSeats > 1) checkSeats(license, storedSeats);
  await tx.renewLicense(stored.id, {
    file: certificate,
    fileIssuedAt: issued,
    fileExpiresAt: license.fileExpiry ? unixSeconds(license.fileExpiry) : null,
    expiresAt: license.expiry ? unixSeconds(license.expiry) : null,
    maxMachines: license.maxMachines,
    maxUsers: license.maxUsers,
  });
  await tx.audit({
    event: EventType.licenseRenewed,
    entity: EntityType.license,
    entityId: stored.id,
    poolId,
    now,
  });
  return stored.id;
}

/** Creates a pool and records `pool.added`. */
async function insertPool(tx: Tx, { name, now }: { name: string; now: number }): Promise<Pool> {
  const pool = await tx.insertPool(name, now);
  await tx.audit({
    event: EventType.poolAdded,
    entity: EntityType.pool,
    entityId: pool.id,
    poolId: null,
    now,
  });
  return pool;
}

/**
 * Deletes licenses by Keygen id in one transaction and records
 * `license.removed` for each. A license leased right now (any seat of a
 * multi-seat license) is deleted only with `force`, which also records
 * `license.released` for each lease it ends. A multi-seat license goes with
 * its seat rows.
 *
 * @throws {LicenseNotFoundError} an id is unknown; nothing is deleted.
 * @throws {LicenseLeasedError} a license is leased and `force` is not set;
 *   nothing is deleted.
 */
export function removeLicenses(
  store: Store,
  guids: readonly string[],
  options: { force?: boolean; now: number },
): Promise<LicenseInfo[]> {
  const { now } = options;
  return store.transaction(async (tx) => {
    const removed: LicenseInfo[] = [];
    for (const guid of new Set(guids)) {
      const license = await findLicenseIn(tx, guid);
      const seats = license.seats > 1 ? await tx.licenseSeats(license.id) : [license];
      for (const seat of seats) {
        const state = leaseState(seat, now);
        if (state === "expired") {
          // Ended exactly as the reaper would end it, before the license goes.
          const held = { id: seat.id, licenseId: license.id, poolId: seat.poolId };
          const holder = holderOfKey(seat.nodeFingerprint!).kind;
          await expireLease(tx, { nodeId: seat.nodeId!, held, now, holder });
        } else if (state === "leased") {
          if (!options.force) {
            const holder = holderOfKey(seat.nodeFingerprint!);
            throw new LicenseLeasedError(
              `License "${guid}" is leased by ${holder.kind} "${
                holderName(holder)
              }"; wait for the ${holder.kind} to release it, or pass --force to delete it anyway`,
            );
          }
          await tx.audit({
            event: EventType.licenseReleased,
            entity: EntityType.license,
            entityId: license.id,
            poolId: license.poolId,
            now,
          });
        }
      }
      await tx.deleteLicense(license.id);
      await tx.audit({
        event: EventType.licenseRemoved,
        entity: EntityType.license,
        entityId: license.id,
        poolId: license.poolId,
        now,
      });
      removed.push(license);
    }
    return removed;
  });
}

/**
 * Lists licenses in the order they were added: all of them, or those of one
 * pool; with `expiringBy` (unix seconds), only those no longer valid from
 * that moment on (see `validUntil` in `lib/expiry.ts`), expired ones
 * included.
 *
 * @throws {PoolNotFoundError} `pool` names no pool.
 */
export function listLicenses(
  store: Store,
  options: { pool?: string; expiringBy?: number } = {},
): Promise<LicenseInfo[]> {
  const { expiringBy } = options;
  return store.read(async (tx) => {
    if (options.pool === undefined) return await tx.licenses({ expiringBy });
    const pool = await tx.poolByName(options.pool);
    // The reference Relay's wording, which scripts may match on.
    if (!pool) throw new PoolNotFoundError("pool not found");
    return await tx.licenses({ poolId: pool.id, expiringBy });
  });
}

/**
 * A license's lease at `now`: none (`free`), live (`leased`), or past its
 * stored expiry and not yet reaped (`expired`). A lease stored without an
 * expiry (by Keygen Relay, or with `--no-heartbeats`) counts as live: only
 * the server that serves it knows its ttl.
 */
export type LeaseState = "free" | "leased" | "expired";

/** The {@link LeaseState} of `license` at `now` (unix seconds). */
export function leaseState(
  license: Pick<LicenseInfo, "nodeId" | "leaseExpiresAt">,
  now: number,
): LeaseState {
  if (license.nodeId === null) return "free";
  const expiresAt = license.leaseExpiresAt;
  return expiresAt !== null && expiresAt <= now ? "expired" : "leased";
}

/** The pool with this name, if any. */
export function findPool(store: Store, name: string): Promise<Pool | undefined> {
  return store.read((tx) => tx.poolByName(name));
}

/** Every pool, by name. */
export async function listPools(store: Store): Promise<Pool[]> {
  const pools = await store.read((tx) => tx.pools());
  return pools.toSorted((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/**
 * One license by Keygen id.
 *
 * @throws {LicenseNotFoundError} no license has that id.
 */
export function findLicense(store: Store, guid: string): Promise<LicenseInfo> {
  return store.read((tx) => findLicenseIn(tx, guid));
}

async function findLicenseIn(tx: Tx, guid: string): Promise<LicenseInfo> {
  const license = await tx.licenseByGuid(guid);
  if (!license) throw new LicenseNotFoundError(`License "${guid}" not found`);
  return license;
}
