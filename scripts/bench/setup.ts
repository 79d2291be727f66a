/**
 * Databases for `scripts/bench.ts`, built fast: licenses are inserted through
 * the product's own `openStore()` and `Tx.insertLicense()` in one
 * transaction, with unique, realistically sized file bytes (a random body
 * framed like a Keygen license file, about 3.7 KB) instead of minted and
 * verified files; leases are made by writing the rows directly, as a running
 * server would have left them.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { openStore } from "../../lib/storage/open.ts";
import type { NewLicenseRow } from "../../lib/storage/store.ts";
import { DEFAULT_TTL_SECONDS, frameLicenseFile, randomLicenseKey } from "../mint.ts";

/** The current unix time in whole seconds, as the database rows hold it. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Random bytes in a license file's body: 3,600 base64 characters, like a real file. */
const BODY_BYTES = 2700;

/** A unique file shaped like a Keygen license file (header, base64 at 60 columns, footer). */
function licenseFile(random: Uint8Array, encoder: TextEncoder): Uint8Array {
  crypto.getRandomValues(random);
  return encoder.encode(frameLicenseFile(random.toBase64()));
}

/** A free license in the default pool, with a unique file and key, valid for 30 days. */
function licenseRow(random: Uint8Array, encoder: TextEncoder, now: number): NewLicenseRow {
  return {
    guid: crypto.randomUUID(),
    file: licenseFile(random, encoder),
    key: randomLicenseKey(),
    poolId: null,
    fileIssuedAt: now,
    fileExpiresAt: now + DEFAULT_TTL_SECONDS,
    expiresAt: null,
  };
}

/**
 * Creates `path` with `count` free licenses in the default pool; returns the
 * bytes of license files written. `bodyBytes` (random bytes per file body,
 * base64-encoded) is only changed for what-if experiments.
 */
export async function buildLicenseDb(
  path: string,
  count: number,
  now: number,
  bodyBytes = BODY_BYTES,
): Promise<{ fileBytes: number }> {
  const store = await openStore(path, {
    now,
    audit: false,
    // Connection-only settings for a faster build; the server opens it with its own.
    pragmas: { cache_size: "-262144", synchronous: "OFF" },
  });
  const random = new Uint8Array(bodyBytes);
  const encoder = new TextEncoder();
  let fileBytes = 0;
  try {
    await store.transaction(async (tx) => {
      for (let i = 0; i < count; i++) {
        const row = licenseRow(random, encoder, now);
        fileBytes += row.file.length;
        await tx.insertLicense(row, now);
      }
    });
  } finally {
    await store.close();
  }
  checkpoint(path);
  return { fileBytes };
}

/** Adds `count` more free licenses to an existing database. */
export async function addLicenses(path: string, count: number, now: number): Promise<void> {
  const store = await openStore(path, { now, audit: false });
  const random = new Uint8Array(BODY_BYTES);
  const encoder = new TextEncoder();
  try {
    await store.transaction(async (tx) => {
      for (let i = 0; i < count; i++) {
        await tx.insertLicense(licenseRow(random, encoder, now), now);
      }
    });
  } finally {
    await store.close();
  }
}

/** The benchmark server's lease ttl (`--ttl 24h`), in seconds. */
const DAY = 86_400;

/**
 * Leases free licenses to new nodes `<prefix><i>`, i from `first` on, one per
 * license in id order, with their last heartbeat at `heartbeatAt` and their
 * lease expiring `ttl` seconds later (default a day, the benchmark server's
 * ttl), directly in the tables (as `relay serve` would have written them,
 * audit rows aside). Returns how many were leased.
 */
export function leaseDirectly(
  path: string,
  options: {
    count: number;
    prefix: string;
    first?: number;
    heartbeatAt: number;
    now: number;
    ttl?: number;
  },
): number {
  const db = open(path);
  try {
    db.exec("BEGIN IMMEDIATE");
    const free = db.prepare(
      "SELECT id FROM licenses WHERE pool_id IS NULL AND node_id IS NULL ORDER BY id LIMIT ?",
    ).all(options.count).map((row) => Number(row.id));
    const insertNode = db.prepare(
      `INSERT INTO nodes (fingerprint, last_heartbeat_at, lease_expires_at, created_at)
       VALUES (?, ?, ?, ?) RETURNING id`,
    );
    const lease = db.prepare(
      "UPDATE licenses SET node_id = ?, last_claimed_at = ?, claims = claims + 1 WHERE id = ?",
    );
    const first = options.first ?? 0;
    free.forEach((licenseId, i) => {
      const node = insertNode.get(
        `${options.prefix}${first + i}`,
        options.heartbeatAt,
        options.heartbeatAt + (options.ttl ?? DAY),
        options.now,
      );
      lease.run(Number(node!.id), options.now, licenseId);
    });
    db.exec("COMMIT");
    return free.length;
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  } finally {
    db.close();
  }
}

/** Sets the last heartbeat of the active nodes `<prefix><i>`, first ≤ i < end. */
export function setHeartbeats(
  path: string,
  options: { prefix: string; first: number; end: number; heartbeatAt: number; ttl?: number },
): void {
  const db = open(path);
  try {
    db.exec("BEGIN IMMEDIATE");
    const update = db.prepare(
      `UPDATE nodes SET last_heartbeat_at = ?, lease_expires_at = ?
       WHERE fingerprint = ? AND deactivated_at IS NULL`,
    );
    const expiresAt = options.heartbeatAt + (options.ttl ?? DAY);
    for (let i = options.first; i < options.end; i++) {
      update.run(options.heartbeatAt, expiresAt, `${options.prefix}${i}`);
    }
    db.exec("COMMIT");
  } finally {
    db.close();
  }
}

/** Copies a database file (its WAL must be checkpointed) and flushes the copy to disk. */
export async function copyDb(from: string, to: string): Promise<void> {
  for (const suffix of ["", "-wal", "-shm"]) {
    await Deno.remove(to + suffix).catch(() => {});
  }
  await Deno.copyFile(from, to);
  const file = await Deno.open(to, { read: true, write: true });
  try {
    await file.sync();
  } finally {
    file.close();
  }
}

/**
 * Moves everything in the WAL into the database file, empties the WAL and
 * flushes the file to disk, so no write-back of the set-up (written with
 * synchronous=OFF) competes with the fsyncs of the next measurement.
 */
export function checkpoint(path: string): void {
  const db = open(path);
  try {
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  } finally {
    db.close();
  }
  const file = Deno.openSync(path, { read: true, write: true });
  try {
    file.syncSync();
  } finally {
    file.close();
  }
}

/** Counts for progress checks, read without blocking a running server (WAL readers). */
export class Reader {
  #db: DatabaseSync;
  #free;
  #expired;

  /** Opens `path` read-only. */
  constructor(path: string) {
    this.#db = new DatabaseSync(path, { readOnly: true });
    this.#db.exec("PRAGMA busy_timeout = 5000");
    this.#free = this.#db.prepare(
      "SELECT count(*) AS n FROM licenses WHERE pool_id IS NULL AND node_id IS NULL",
    );
    this.#expired = this.#db.prepare(
      "SELECT count(*) AS n FROM nodes WHERE deactivated_at IS NULL AND last_heartbeat_at <= ?",
    );
  }

  /** Free licenses of the default pool. */
  freeLicenses(): number {
    return Number(this.#free.get()!.n);
  }

  /** Active nodes whose last heartbeat is at or before `cutoff`. */
  expiredNodes(cutoff: number): number {
    return Number(this.#expired.get(cutoff)!.n);
  }

  /** Closes the read-only connection. */
  close(): void {
    this.#db.close();
  }

  /** Closes the connection at the end of a `using` block. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function open(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA busy_timeout = 5000");
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = OFF");
  db.exec("PRAGMA cache_size = -262144");
  return db;
}
