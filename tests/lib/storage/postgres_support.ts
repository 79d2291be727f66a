/**
 * Helpers of the PostgreSQL query tests: the same rows on a SQLite store and
 * on a PostgreSQL database, and reads compared between the two.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";

import { recordDenial } from "../../../lib/denials.ts";
import { userHolder } from "../../../lib/holders.ts";
import { claim, type LeasePolicy, reap, release } from "../../../lib/leases.ts";
import type { LicenseFile } from "../../../lib/license_file.ts";
import { addLicenses, removeLicenses, type VerifiedLicense } from "../../../lib/licenses.ts";
import { openStore } from "../../../lib/storage/open.ts";
import type { Sql, TxSql } from "../../../lib/storage/postgres/connect.ts";
import { migratePostgres } from "../../../lib/storage/postgres/migrate.ts";

import type { Store, Tx } from "../../../lib/storage/store.ts";
import { tempDir } from "../../helpers.ts";
import { testDatabase } from "../../postgres.ts";

export const T0 = 1_800_000_000;
export const DAY = 86_400;
export const HEARTBEATS: LeasePolicy = { ttl: 600, heartbeats: true, strategy: "fifo" };
export const NO_HEARTBEATS: LeasePolicy = { ttl: 60, heartbeats: false, strategy: "lifo" };
export const TABLES = ["pools", "nodes", "licenses", "audit_logs"] as const;

/** A license file as verification leaves it, without a certificate to verify. */
export function verified(
  n: number,
  dates: { issued?: number; fileExpiry?: number; expiry?: number; seats?: boolean } = {},
): VerifiedLicense {
  const date = (seconds: number | undefined) =>
    seconds === undefined ? null : new Date(seconds * 1e3);
  const license: LicenseFile = {
    id: `lic-${n}`,
    key: `KEY-${n}`,
    algorithm: "base64+ed25519",
    expiry: date(dates.expiry),
    issued: date(dates.issued ?? T0 - DAY)!,
    fileExpiry: date(dates.fileExpiry),
    ttl: null,
    entitlements: [],
    maxMachines: dates.seats ? 5 : null,
    maxUsers: null,
  };
  const certificate = new TextEncoder().encode(`certificate ${n} ${dates.issued ?? 0}`);
  return { source: `lic-${n}.lic`, certificate, license };
}

/**
 * Rows of every kind, written through the lease and license operations:
 * licenses with and without pools and expiries, a multi-seat license, nodes
 * and users that claim, extend, release and expire, a renewal and a removal.
 */
export async function populate(store: Store): Promise<void> {
  await addLicenses(store, [verified(1), verified(2, { fileExpiry: T0 + 2 * DAY })], {
    now: T0,
  });
  await addLicenses(store, [
    verified(3, { expiry: T0 + 10 * DAY }),
    verified(4, { fileExpiry: T0 + 3 * DAY, expiry: T0 + DAY }),
    verified(5),
  ], { pool: "prod", now: T0 + 10 });
  await addLicenses(store, [verified(6, { seats: true })], {
    pool: "seats",
    now: T0 + 20,
    seats: 4,
  });
  await addLicenses(store, [verified(7, { expiry: T0 - DAY })], { pool: "empty", now: T0 + 30 });

  const at = (now: number, policy = HEARTBEATS) => ({ now, policy });
  await claim(store, "node-a", { pool: null, ...at(T0 + 100) });
  await claim(store, "node-b", { pool: "prod", ...at(T0 + 200) });
  await claim(store, "node-b", { pool: "prod", ...at(T0 + 230) }); // extended
  await claim(store, "node-c", { pool: "prod", ...at(T0 + 300, NO_HEARTBEATS) });
  await claim(store, "node-d", { pool: "prod", ...at(T0 + 400) });
  // Exhausted: the server records the denial.
  assert.equal((await claim(store, "node-h", { pool: "prod", ...at(T0 + 450) })).kind, "exhausted");
  await recordDenial(store, "node-h", { pool: "prod", now: T0 + 450 });
  await recordDenial(store, "node-z", { pool: null, now: T0 + 460 });
  await claim(store, "seat-1", { pool: "seats", ...at(T0 + 500) });
  await claim(store, "seat-2", { pool: "seats", ...at(T0 + 600) });
  await claim(store, userHolder("ann@example.com"), { pool: "seats", ...at(T0 + 700) });
  await release(store, "node-a", { pool: null, ...at(T0 + 800) });
  await claim(store, "node-e", { pool: null, ...at(T0 + 900) });
  await claim(store, "node-f", { pool: "empty", ...at(T0 + 950) }); // expired only
  await recordDenial(store, "node-f", { pool: "empty", now: T0 + 950 });
  await reap(store, { now: T0 + 1_000, ttl: 600, limit: 1 }); // one of the expired leases
  await claim(store, "seat-3", { pool: "seats", ...at(T0 + 1_200) });
  await addLicenses(store, [verified(3, { issued: T0, expiry: T0 + 20 * DAY })], {
    pool: "prod",
    now: T0 + 3_000,
  }); // renewed
  await addLicenses(store, [verified(8)], { now: T0 + 3_100 });
  await removeLicenses(store, ["lic-8"], { now: T0 + 3_200 });
  await claim(store, "node-g", { pool: null, ...at(T0 + 4_000, NO_HEARTBEATS) });
}

/** A PostgreSQL database at the current schema with the same rows as the SQLite one at `path`. */
export async function copyRows(path: string, sql: Sql): Promise<void> {
  await migratePostgres(sql, { name: "test", now: T0 });
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    for (const table of TABLES) {
      const rows = db.prepare(`SELECT * FROM ${table} ORDER BY id`).all().map((row) => ({
        ...row,
      }));
      for (const row of rows) {
        const columns = Object.keys(row);
        await sql.unsafe(
          `INSERT INTO ${table} (${columns.join(", ")})
           VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")})`,
          Object.values(row),
        );
      }
      // Later inserts take the ids SQLite's would (AUTOINCREMENT never reuses one).
      const [next] = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = ?").all(table);
      if (next) {
        await sql.unsafe(`SELECT setval(pg_get_serial_sequence('${table}', 'id'), $1)`, [
          next.seq as number,
        ]);
      }
    }
  } finally {
    db.close();
  }
}

/** Every row of `table` in id order, with plain objects and bytes (see {@link plain}). */
export function sqliteRows(path: string, table: string): unknown[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return plain(db.prepare(`SELECT * FROM ${table} ORDER BY id`).all());
  } finally {
    db.close();
  }
}

/** {@link sqliteRows} of a PostgreSQL database. */
export async function postgresRows(sql: Sql, table: string): Promise<unknown[]> {
  return plain([...await sql.unsafe(`SELECT * FROM ${table} ORDER BY id`)]);
}

/**
 * `value` with plain objects and arrays (node:sqlite's rows have no
 * prototype, postgres.js's lists are an Array subclass), bytes as
 * Uint8Array (postgres.js reads a Buffer) and BOOLEAN as 0/1.
 */
export function plain(value: unknown): unknown[] {
  const convert = (x: unknown): unknown => {
    if (x instanceof Uint8Array) return new Uint8Array(x);
    if (Array.isArray(x)) return x.map(convert);
    if (typeof x === "boolean") return x ? 1 : 0;
    if (x !== null && typeof x === "object") {
      return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, convert(v)]));
    }
    return x;
  };
  return convert(value) as unknown[];
}

/** `fn`'s result in a transaction of `sql`, as plain values. */
export async function db<T>(sql: Sql, fn: (tx: TxSql) => Promise<T>): Promise<unknown> {
  return plain([await sql.begin(fn)])[0];
}

/** Both engines with the populated rows; `compare` runs a read on each and asserts equality. */
export async function withBoth(
  fn: (engines: {
    store: Store;
    path: string;
    sql: Sql;
    compare: <T>(
      label: string,
      onSqlite: (tx: Tx) => Promise<T>,
      onPostgres: (tx: TxSql) => Promise<T>,
    ) => Promise<T>;
  }) => Promise<void>,
  rows: (store: Store) => Promise<void> = populate,
): Promise<void> {
  await using dir = await tempDir();
  await using db = await testDatabase();
  const path = `${dir.path}/relay.sqlite`;
  const store = await openStore(path, { now: T0 });
  try {
    await rows(store);
    await copyRows(path, db.sql);
    const compare = async <T>(
      label: string,
      onSqlite: (tx: Tx) => Promise<T>,
      onPostgres: (tx: TxSql) => Promise<T>,
    ): Promise<T> => {
      const expected = await store.read(onSqlite);
      const actual = await db.sql.begin(onPostgres) as T;
      assert.deepEqual(plain([actual]), plain([expected]), label);
      return actual;
    };
    await fn({ store, path, sql: db.sql, compare });
  } finally {
    await store.close();
  }
}
