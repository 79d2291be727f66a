/**
 * The statements that find a free license for a claim on PostgreSQL, as
 * functions of a transaction's connection (`PgTx` delegates to them).
 *
 * Every pick locks the license it returns `FOR UPDATE SKIP LOCKED`: two
 * claims on two servers never get the same license, and a claim never waits
 * for another's license, it takes the next one. A pool and no pool are
 * separate statements (`pool_id = $1`, `pool_id IS NULL`): `IS NOT DISTINCT
 * FROM` cannot use an index. Each orders by the columns of the index it is
 * meant to walk (`pool_id` first, though it is fixed), so that the planner
 * reads the first row off that index whatever its statistics say. PostgreSQL
 * keeps no count of free licenses
 * (`./schema.ts`), so `rand` samples ids (`lib/strategy.ts`).
 *
 * @module
 */

import type { Query, TxSql } from "./client.ts";
import { VALID_UNTIL } from "./schema.ts";

/** Constant text spliced into statements: they stay prepared statements. */
const FIXED = { prepare: true } as const;

/** The condition on `licenses.pool_id` (alias `l`) for a pool, or for no pool (null). */
function inPool(sql: TxSql, poolId: number | null): Query<unknown> {
  return poolId === null ? sql`l.pool_id IS NULL` : sql`l.pool_id = ${poolId}`;
}

/** Free licenses (alias `l`) of a pool valid at `validAt`, spelled as the index is. */
function validFree(sql: TxSql, poolId: number | null, validAt: number): Query<unknown> {
  return sql`${inPool(sql, poolId)} AND l.node_id IS NULL
    AND ${sql.unsafe(VALID_UNTIL, [], FIXED)} > ${validAt}`;
}

/** See `Tx.firstFreeLicense`: idx_licenses_pool_free in id order. */
export async function firstFreeLicense(
  sql: TxSql,
  poolId: number | null,
  { order, validAt }: { order: "first" | "last"; validAt: number },
): Promise<number | undefined> {
  const [row] = await sql<{ id: number }[]>`
    SELECT l.id FROM licenses l WHERE ${validFree(sql, poolId, validAt)}
    ORDER BY ${order === "first" ? sql`l.pool_id, l.id` : sql`l.pool_id DESC, l.id DESC`} LIMIT 1
    FOR UPDATE SKIP LOCKED`;
  return row?.id;
}

/** See `Tx.hasValidFreeLicense`: one probe of idx_licenses_pool_valid_until. */
export async function hasValidFreeLicense(
  sql: TxSql,
  poolId: number | null,
  validAt: number,
): Promise<boolean> {
  // The greatest validity of a free license, read off the end of the index.
  const [row] = await sql<{ until: number }[]>`
    SELECT ${sql.unsafe(VALID_UNTIL, [], FIXED)} AS until FROM licenses l
    WHERE ${inPool(sql, poolId)} AND l.node_id IS NULL
    ORDER BY l.pool_id DESC, ${sql.unsafe(VALID_UNTIL, [], FIXED)} DESC LIMIT 1`;
  return row !== undefined && row.until > validAt;
}

/**
 * See `Tx.hasFreeLicense`: one probe of idx_licenses_pool_free. A license
 * that another transaction has locked (a claim about to lease it) does not
 * count: the claim that asks found no valid one to take, and must not answer
 * `expired_only` for a license that is being leased.
 */
export async function hasFreeLicense(sql: TxSql, poolId: number | null): Promise<boolean> {
  const rows = await sql`
    SELECT 1 FROM licenses l WHERE ${inPool(sql, poolId)} AND l.node_id IS NULL
    ORDER BY l.pool_id, l.id LIMIT 1 FOR UPDATE SKIP LOCKED`;
  return rows.length > 0;
}

/** See `Tx.validFreeLicenseCount`; unused by `rand` on PostgreSQL. */
export async function validFreeLicenseCount(
  sql: TxSql,
  poolId: number | null,
  validAt: number,
): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    SELECT count(*) AS n FROM licenses l WHERE ${validFree(sql, poolId, validAt)}`;
  return row.n;
}

/** See `Tx.validFreeLicenseAt`, in id order; unused by `rand` on PostgreSQL. */
export async function validFreeLicenseAt(
  sql: TxSql,
  poolId: number | null,
  { index, validAt }: { index: number; validAt: number },
): Promise<number | undefined> {
  const [row] = await sql<{ id: number }[]>`
    SELECT l.id FROM licenses l WHERE ${validFree(sql, poolId, validAt)}
    ORDER BY l.id LIMIT 1 OFFSET ${index} FOR UPDATE SKIP LOCKED`;
  return row?.id;
}

/** See `Tx.freeLicenseIdRange`: the lowest and highest free ids, from idx_licenses_pool_free. */
export async function freeLicenseIdRange(
  sql: TxSql,
  poolId: number | null,
): Promise<{ low: number; high: number } | undefined> {
  const free = sql`${inPool(sql, poolId)} AND l.node_id IS NULL`;
  const [row] = await sql<{ low: number | null; high: number | null }[]>`
    SELECT (SELECT l.id FROM licenses l WHERE ${free} ORDER BY l.pool_id, l.id LIMIT 1) AS low,
           (SELECT l.id FROM licenses l WHERE ${free}
            ORDER BY l.pool_id DESC, l.id DESC LIMIT 1) AS high`;
  if (row.low === null || row.high === null) return undefined;
  return { low: row.low, high: row.high };
}

/** See `Tx.isFreeLicense`; locks the license when it is. */
export async function isFreeLicense(
  sql: TxSql,
  poolId: number | null,
  { id, validAt }: { id: number; validAt: number },
): Promise<boolean> {
  const rows = await sql`
    SELECT 1 FROM licenses l WHERE l.id = ${id} AND ${validFree(sql, poolId, validAt)}
    FOR UPDATE SKIP LOCKED`;
  return rows.length > 0;
}

/**
 * See `Tx.firstFreeLicenseAmong`: one statement, a primary-key lookup per id
 * in list order; locks the license it returns.
 */
export async function firstFreeLicenseAmong(
  sql: TxSql,
  poolId: number | null,
  { ids, validAt }: { ids: readonly number[]; validAt: number },
): Promise<number | undefined> {
  if (ids.length === 0) return undefined;
  const [row] = await sql<{ id: number }[]>`
    SELECT l.id FROM unnest(${sql.array([...ids])}::bigint[]) WITH ORDINALITY AS s (id, n)
    JOIN licenses l ON l.id = s.id
    WHERE ${validFree(sql, poolId, validAt)}
    ORDER BY s.n LIMIT 1
    FOR UPDATE OF l SKIP LOCKED`;
  return row?.id;
}

/**
 * See `Tx.freeLicenseFrom`: idx_licenses_pool_free from `id` on, then from
 * the start; locks the license it returns.
 */
export async function freeLicenseFrom(
  sql: TxSql,
  poolId: number | null,
  { id, validAt }: { id: number; validAt: number },
): Promise<number | undefined> {
  const from = async (low: number) => {
    const [row] = await sql<{ id: number }[]>`
      SELECT l.id FROM licenses l WHERE ${validFree(sql, poolId, validAt)} AND l.id >= ${low}
      ORDER BY l.pool_id, l.id LIMIT 1 FOR UPDATE SKIP LOCKED`;
    return row?.id;
  };
  return await from(id) ?? await from(0);
}

/**
 * See `Tx.freeLicenseAt`: PostgreSQL keeps no counts to find the k-th free
 * license in O(log n) with (`Tx.freeLicenseCount` is null), so `rand` never
 * calls it there.
 */
export function freeLicenseAt(): Promise<number | undefined> {
  return Promise.reject(
    new Error("Internal error: freeLicenseAt is not available on PostgreSQL (no free counts)"),
  );
}
