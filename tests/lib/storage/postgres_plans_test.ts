/**
 * The plans PostgreSQL runs the claim path's picks with: the statements of
 * `lib/storage/postgres/free_licenses.ts` themselves, as prepared on the
 * connection, explained with the generic plan a server uses after a few
 * runs. Each must read its row off an index: never a scan of `licenses`,
 * never a sort of them (the samples of `rand` are sorted by position only).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { TxSql } from "../../../lib/storage/postgres/connect.ts";
import * as free from "../../../lib/storage/postgres/free_licenses.ts";
import { openStore } from "../../../lib/storage/open.ts";
import { testDatabase } from "../../postgres.ts";

const T0 = 1_800_000_000;

/** The picks a claim may make, each one call on a transaction's statements. */
const PICKS: [string, (sql: TxSql, poolId: number | null) => Promise<unknown>][] = [
  ["fifo", (sql, pool) => free.firstFreeLicense(sql, pool, { order: "first", validAt: T0 })],
  ["lifo", (sql, pool) => free.firstFreeLicense(sql, pool, { order: "last", validAt: T0 })],
  ["any valid free", (sql, pool) => free.hasValidFreeLicense(sql, pool, T0)],
  ["any free", (sql, pool) => free.hasFreeLicense(sql, pool)],
  ["id range", (sql, pool) => free.freeLicenseIdRange(sql, pool)],
  ["one id", (sql, pool) => free.isFreeLicense(sql, pool, { id: 5, validAt: T0 })],
  ["samples", (sql, pool) => free.firstFreeLicenseAmong(sql, pool, { ids: [1, 2], validAt: T0 })],
  ["pivot", (sql, pool) => free.freeLicenseFrom(sql, pool, { id: 5, validAt: T0 })],
];

/**
 * The generic plans of the statements `call` prepared on the transaction's
 * connection (`EXPLAIN EXECUTE`; the parameters' values do not matter to a
 * generic plan).
 */
async function plansOf(sql: TxSql, call: () => Promise<unknown>): Promise<string[]> {
  const list = () =>
    sql<{ name: string; n: number }[]>`
      SELECT name, cardinality(parameter_types) AS n FROM pg_prepared_statements
      WHERE statement NOT LIKE '%pg_prepared_statements%'`;
  const before = new Set((await list()).map((row) => row.name));
  await call();
  const prepared = await list();
  const plans: string[] = [];
  for (const { name, n } of prepared.filter((row) => !before.has(row.name))) {
    const args = n === 0 ? "" : `(${Array(n).fill("NULL").join(", ")})`;
    const rows = await sql.unsafe<{ "QUERY PLAN": string }[]>(`EXPLAIN EXECUTE ${name}${args}`);
    plans.push(rows.map((row) => row["QUERY PLAN"]).join("\n"));
  }
  return plans;
}

Deno.test("every pick of a free license on PostgreSQL reads it off an index, with and without a pool", async () => {
  await using db = await testDatabase();
  await (await openStore(db.url, { now: T0 })).close();
  // 20,000 licenses in a pool and 20,000 without, all but one in 100 leased,
  // in id order (as fifo leaves them), and statistics that say so.
  await db.sql`INSERT INTO pools (name, created_at) VALUES ('big', ${T0})`;
  await db.sql`
    INSERT INTO licenses (guid, file, key, pool_id, created_at)
    SELECT 'lic-' || g, convert_to('file-' || g, 'UTF8'), 'KEY-' || g,
           CASE WHEN g % 2 = 0 THEN 1 END, ${T0}
    FROM generate_series(1, 40000) g`;
  await db.sql`
    INSERT INTO nodes (fingerprint, last_heartbeat_at, lease_expires_at)
    SELECT 'node-' || id, ${T0}, ${T0 + 600} FROM licenses WHERE id % 100 <> 0`;
  await db
    .sql`UPDATE licenses l SET node_id = n.id FROM nodes n WHERE n.fingerprint = 'node-' || l.id`;
  await db.sql`ANALYZE`;

  for (const poolId of [1, null]) {
    for (const [name, pick] of PICKS) {
      const plans = await db.sql.begin("ISOLATION LEVEL REPEATABLE READ", async (sql) => {
        await sql`SET LOCAL plan_cache_mode = force_generic_plan`;
        return await plansOf(sql, () => pick(sql, poolId));
      });
      const label = `${name}, pool ${poolId}`;
      assert.ok(plans.length > 0, `${label}: a prepared statement`);
      for (const plan of plans) {
        assert.doesNotMatch(plan, /Seq Scan on licenses/, `${label}:\n${plan}`);
        assert.match(plan, /Index/, `${label}:\n${plan}`);
        // Only the samples may be sorted (by their position), never licenses.
        if (name !== "samples") assert.doesNotMatch(plan, /Sort/, `${label}:\n${plan}`);
      }
    }
  }
});
