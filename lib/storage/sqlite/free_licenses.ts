/**
 * The statements that find a free license for a claim: by id order (fifo,
 * lifo), by sampling ids, by walking `free_counts` (rand), and among the
 * valid ones only (see `VALID_UNTIL` in `./schema.ts`). `SqliteTx`
 * (`./statements.ts`) extends this class, through `./status_queries.ts`.
 *
 * `pool_id IS ?` matches NULL too, so one statement serves licenses with and
 * without a pool.
 *
 * @module
 */

// node:sqlite is synchronous: the methods are async only to fit the engine-neutral Tx.
// deno-lint-ignore-file require-await

import type { PreparedStatements } from "./prepared.ts";
import { FREE_COUNT_SHIFTS, VALID_UNTIL } from "./schema.ts";

/** Free licenses of a pool (`?1`, null: no pool) valid at `?2`. */
const VALID_FREE = `pool_id IS ?1 AND node_id IS NULL AND ${VALID_UNTIL} > ?2`;

/** The free-license methods of `SqliteTx`. */
export class FreeLicenseStatements {
  /** The connection's statements. */
  protected readonly sql: PreparedStatements;

  /** Statements run through `sql`. */
  constructor(sql: PreparedStatements) {
    this.sql = sql;
  }

  /**
   * Walks idx_licenses_pool_node in id order, skipping expired licenses: named,
   * since without statistics SQLite may prefer idx_licenses_pool_valid_until and
   * sort every valid free license.
   */
  async firstFreeLicense(
    poolId: number | null,
    { order, validAt }: { order: "first" | "last"; validAt: number },
  ): Promise<number | undefined> {
    return this.sql.get<{ id: number }>(
      `SELECT id FROM licenses INDEXED BY idx_licenses_pool_node WHERE ${VALID_FREE}
       ORDER BY id ${order === "first" ? "ASC" : "DESC"} LIMIT 1`,
      poolId,
      validAt,
    )?.id;
  }

  async hasValidFreeLicense(poolId: number | null, validAt: number): Promise<boolean> {
    return this.sql.get(
      `SELECT 1 AS found FROM licenses INDEXED BY idx_licenses_pool_valid_until WHERE ${VALID_FREE}
       LIMIT 1`,
      poolId,
      validAt,
    ) !== undefined;
  }

  async validFreeLicenseCount(poolId: number | null, validAt: number): Promise<number> {
    return this.sql.get<{ n: number }>(
      `SELECT count(*) AS n FROM licenses INDEXED BY idx_licenses_pool_valid_until WHERE ${VALID_FREE}`,
      poolId,
      validAt,
    )!.n;
  }

  /**
   * In the order of idx_licenses_pool_valid_until: by validity, then id (not
   * written out: SQLite would sort instead of reading the index in order).
   */
  async validFreeLicenseAt(
    poolId: number | null,
    { index, validAt }: { index: number; validAt: number },
  ): Promise<number | undefined> {
    return this.sql.get<{ id: number }>(
      `SELECT id FROM licenses INDEXED BY idx_licenses_pool_valid_until WHERE ${VALID_FREE}
       ORDER BY ${VALID_UNTIL} LIMIT 1 OFFSET ?3`,
      poolId,
      validAt,
      index,
    )?.id;
  }

  async freeLicenseCount(poolId: number | null): Promise<number> {
    return this.sql.get<{ n: number }>(
      "SELECT IFNULL(sum(free), 0) AS n FROM free_counts WHERE pool_key = IFNULL(?, 0) AND level = ?",
      poolId,
      FREE_COUNT_SHIFTS.length,
    )!.n;
  }

  async hasFreeLicense(poolId: number | null): Promise<boolean> {
    return this.sql.get(
      `SELECT 1 AS found FROM licenses INDEXED BY idx_licenses_pool_node
       WHERE pool_id IS ? AND node_id IS NULL LIMIT 1`,
      poolId,
    ) !== undefined;
  }

  /** One lookup per id, in order: SQLite has no round trips to save. */
  async firstFreeLicenseAmong(
    poolId: number | null,
    { ids, validAt }: { ids: readonly number[]; validAt: number },
  ): Promise<number | undefined> {
    for (const id of ids) {
      if (await this.isFreeLicense(poolId, { id, validAt })) return id;
    }
    return undefined;
  }

  async freeLicenseFrom(
    poolId: number | null,
    { id, validAt }: { id: number; validAt: number },
  ): Promise<number | undefined> {
    const from = (low: number) =>
      this.sql.get<{ id: number }>(
        `SELECT id FROM licenses INDEXED BY idx_licenses_pool_node WHERE ${VALID_FREE} AND id >= ?3
         ORDER BY id LIMIT 1`,
        poolId,
        validAt,
        low,
      )?.id;
    return from(id) ?? from(0);
  }

  /** From the first and last level-1 counters of `free_counts`. */
  async freeLicenseIdRange(
    poolId: number | null,
  ): Promise<{ low: number; high: number } | undefined> {
    const row = this.sql.get<{ low: number | null; high: number | null }>(
      `SELECT
         (SELECT min(bucket) FROM free_counts WHERE pool_key = IFNULL(?1, 0) AND level = 1) AS low,
         (SELECT max(bucket) FROM free_counts WHERE pool_key = IFNULL(?1, 0) AND level = 1) AS high`,
      poolId,
    );
    if (row?.low == null || row.high == null) return undefined;
    const width = 2 ** FREE_COUNT_SHIFTS[0];
    return { low: row.low * width, high: (row.high + 1) * width - 1 };
  }

  async isFreeLicense(
    poolId: number | null,
    { id, validAt }: { id: number; validAt: number },
  ): Promise<boolean> {
    return this.sql.get(
      `SELECT 1 AS free FROM licenses WHERE id = ?3 AND ${VALID_FREE}`,
      poolId,
      validAt,
      id,
    ) !== undefined;
  }

  /**
   * From the top level of `free_counts` down, the bucket where the running
   * count passes `index`, then the remaining offset among at most 64 ids.
   */
  async freeLicenseAt(poolId: number | null, index: number): Promise<number | undefined> {
    let rest = index;
    let low = 0;
    let high = Number.MAX_SAFE_INTEGER;
    for (let level = FREE_COUNT_SHIFTS.length; level >= 1; level--) {
      const found = this.sql.get<{ bucket: number; before: number }>(
        `SELECT bucket, before FROM (
           SELECT bucket, free, sum(free) OVER (ORDER BY bucket) - free AS before
           FROM free_counts WHERE pool_key = IFNULL(?, 0) AND level = ? AND bucket BETWEEN ? AND ?
         ) WHERE before <= ? AND before + free > ?`,
        poolId,
        level,
        low,
        high,
        rest,
        rest,
      );
      if (!found) return undefined;
      rest -= found.before;
      // The bucket's ids, or its buckets one level down: 64 of them either way.
      const width = 2 ** (FREE_COUNT_SHIFTS[level - 1] - (FREE_COUNT_SHIFTS[level - 2] ?? 0));
      low = found.bucket * width;
      high = low + width - 1;
    }
    return this.sql.get<{ id: number }>(
      `SELECT id FROM licenses WHERE pool_id IS ? AND node_id IS NULL AND id BETWEEN ? AND ?
       ORDER BY id LIMIT 1 OFFSET ?`,
      poolId,
      low,
      high,
      rest,
    )?.id;
  }
}
