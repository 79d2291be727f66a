/**
 * `lib/storage/postgres/client.ts`: tagged templates over `pg`, and what the
 * pool does when the server goes away with statements in flight.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connectPostgres } from "../../../lib/storage/postgres/connect.ts";
import { unavailableReason } from "../../../lib/storage/postgres/errors.ts";
import { testDatabase } from "../../postgres.ts";
import { startPostgresServer } from "../../postgres_server.ts";
import { waitUntil } from "../../helpers.ts";

Deno.test("templates bind values, splice fragments and raw text, and count rows", async () => {
  await using db = await testDatabase();
  const sql = db.sql;
  await sql`CREATE TABLE t (id BIGINT PRIMARY KEY, pool BIGINT, name TEXT, file BYTEA)`;
  const file = new Uint8Array([0, 1, 2, 255]);
  const inserted = await sql`INSERT INTO t VALUES (1, NULL, ${"a'; DROP TABLE t; --"}, ${file}),
    (2, 7, 'b', NULL), (3, 7, 'c', NULL)`;
  assert.equal(inserted.count, 3);

  const inPool = (pool: number | null) => pool === null ? sql`pool IS NULL` : sql`pool = ${pool}`;
  const rows = await sql<{ id: number; name: string }[]>`
    SELECT id, name FROM t WHERE ${inPool(7)} AND id > ${1} ORDER BY id ${sql.unsafe("DESC")}`;
  assert.deepEqual(rows.map((row) => ({ ...row })), [{ id: 3, name: "c" }, { id: 2, name: "b" }]);
  const [none] = await sql<{ id: number; name: string; file: Uint8Array }[]>`
    SELECT id, name, file FROM t WHERE ${inPool(null)}`;
  assert.equal(none.name, "a'; DROP TABLE t; --");
  assert.deepEqual(new Uint8Array(none.file), file);

  // BIGINT, BIGINT[] and sums are numbers; arrays bind as PostgreSQL arrays.
  const [numbers] = await sql<{ ids: number[]; total: number; big: number }[]>`
    SELECT array_agg(id ORDER BY id) AS ids, sum(id) AS total, 9007199254740991::bigint AS big
    FROM t WHERE id = ANY(${sql.array([1, 3])}::bigint[])`;
  assert.deepEqual({ ...numbers }, { ids: [1, 3], total: 4, big: 9007199254740991 });

  const removed = await sql.unsafe("DELETE FROM t WHERE id = $1 OR id = $2", [2, 3], {
    prepare: true,
  });
  assert.equal(removed.count, 2);
});

Deno.test("a transaction commits what resolves and rolls back what rejects", async () => {
  await using db = await testDatabase();
  await db.sql`CREATE TABLE t (id BIGINT PRIMARY KEY)`;
  assert.equal(await db.sql.begin(async (tx) => (await tx`INSERT INTO t VALUES (1)`).count), 1);
  await assert.rejects(
    db.sql.begin(async (tx) => {
      await tx`INSERT INTO t VALUES (2)`;
      await tx`INSERT INTO t VALUES (1)`; // duplicate key
    }),
    (error: Error & { code?: string }) => error.code === "23505",
  );
  const ids = await db.sql<{ id: number }[]>`SELECT id FROM t ORDER BY id`;
  assert.deepEqual(ids.map((row) => row.id), [1]);
  // Repeatable read snapshots see one state throughout.
  const seen = await db.sql.begin("ISOLATION LEVEL REPEATABLE READ READ ONLY", async (tx) => {
    const before = await tx<{ n: number }[]>`SELECT count(*) AS n FROM t`;
    await db.sql`INSERT INTO t VALUES (5)`;
    const after = await tx<{ n: number }[]>`SELECT count(*) AS n FROM t`;
    return [before[0].n, after[0].n];
  });
  assert.deepEqual(seen, [1, 1]);
});

Deno.test("a deferred statement fails its transaction with its own error, before or at COMMIT", async () => {
  await using db = await testDatabase();
  await db.sql`CREATE TABLE t (id BIGINT PRIMARY KEY)`;
  await db.sql`INSERT INTO t VALUES (1)`;
  const duplicate = (error: Error & { code?: string }) => error.code === "23505";
  // Deferred writes that succeed commit with the transaction, in order.
  await db.sql.begin(async (tx) => {
    tx.defer(tx`INSERT INTO t VALUES (2)`);
    tx.defer(tx`UPDATE t SET id = 3 WHERE id = 2`);
    const [row] = await tx<{ n: number }[]>`SELECT count(*) AS n FROM t WHERE id = 3`;
    assert.equal(row.n, 1);
  });
  // The next statement awaited rejects with the deferred one's error, not "aborted" (25P02).
  let next: unknown;
  await assert.rejects(
    db.sql.begin(async (tx) => {
      tx.defer(tx`INSERT INTO t VALUES (4)`);
      tx.defer(tx`INSERT INTO t VALUES (1)`);
      try {
        await tx`SELECT 1`;
      } catch (error) {
        next = error;
        throw error;
      }
    }),
    duplicate,
  );
  assert.ok(duplicate(next as Error));
  // With no statement after it, the commit rejects with its error and rolls back.
  await assert.rejects(
    db.sql.begin((tx) => {
      tx.defer(tx`INSERT INTO t VALUES (5)`);
      tx.defer(tx`INSERT INTO t VALUES (3)`);
      return Promise.resolve();
    }),
    duplicate,
  );
  const ids = await db.sql<{ id: number }[]>`SELECT id FROM t ORDER BY id`;
  assert.deepEqual(ids.map((row) => row.id), [1, 3]);
});

Deno.test("the server killed under load: statements reject, the process lives, the pool recovers", async () => {
  await using server = await startPostgresServer();
  const sql = connectPostgres(server.adminUrl, { max: 8, connectTimeoutSeconds: 2 });
  try {
    await sql`CREATE TABLE t (id BIGSERIAL PRIMARY KEY, at BIGINT)`;
    let ok = 0;
    let stopping = false;
    const reasons = new Set<string>();
    const workers = Array.from({ length: 16 }, async () => {
      while (!stopping) {
        try {
          await sql.begin(async (tx) => {
            await tx`INSERT INTO t (at) VALUES (${Date.now()})`;
            await tx`SELECT pg_sleep(0.001)`;
          });
          ok++;
        } catch (error) {
          const reason = unavailableReason(error);
          assert.ok(reason !== undefined, `not a connection failure: ${error}`);
          reasons.add(reason);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      }
    });
    await waitUntil(() => ok >= 200, "200 transactions before the crash");
    await server.stop("immediate");
    await waitUntil(() => reasons.size > 0, "a failure while the server is down");
    await server.start();
    const before = ok;
    await waitUntil(() => ok >= before + 200, "200 transactions after the restart");
    stopping = true;
    await Promise.all(workers);
    const [{ n }] = await sql<{ n: number }[]>`SELECT count(*) AS n FROM t`;
    // Every acknowledged commit is there (an unacknowledged one may be too).
    assert.ok(n >= ok, `${n} rows for ${ok} acknowledged commits`);
  } finally {
    await sql.end();
  }
});

Deno.test("values() answers rows as arrays of columns, in order", async () => {
  await using db = await testDatabase();
  const rows = await db.sql.unsafe("SELECT $1::bigint AS a, 'x' AS b UNION ALL SELECT 2, 'y'", [1])
    .values();
  assert.deepEqual(rows.map((row) => [...row]), [[1, "x"], [2, "y"]]);
});
