/**
 * `relay migrate`: a SQLite database copied into PostgreSQL and back keeps
 * every row of pools, nodes, licenses (seat rows, leases, file bytes) and
 * audit_logs, ids included; a non-empty target is refused and left as it
 * was; rows added afterwards get new ids; leases go on being served.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { type CopiedTable, COPY_COLUMNS, COPY_ORDER } from "../../lib/storage/copy_tables.ts";
import type { Sql } from "../../lib/storage/postgres/connect.ts";
import {
  FREE_COUNT_MISMATCHES,
  mintFiles,
  query,
  runCli,
  spawnRelay,
  tempDir,
} from "../helpers.ts";
import { testDatabase } from "../postgres.ts";
import { claim } from "../server/http_support.ts";
import { exists, fileArgs, lease, runRelay } from "./support.ts";

/** Every row of the copied tables, by id, bytes as hex: what a copy must keep. */
type Rows = Record<CopiedTable, unknown[][]>;

function normalise(row: readonly unknown[]): unknown[] {
  return row.map((value) =>
    value instanceof Uint8Array
      ? Array.from(value, (byte) => byte.toString(16).padStart(2, "0")).join("")
      : typeof value === "bigint"
      ? Number(value)
      : value
  );
}

function sqliteRows(path: string): Rows {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return Object.fromEntries(COPY_ORDER.map((table) => {
      const select = db.prepare(
        `SELECT ${COPY_COLUMNS[table].join(", ")} FROM ${table} ORDER BY id`,
      );
      select.setReturnArrays(true);
      return [table, (select.all() as unknown as unknown[][]).map(normalise)];
    })) as Rows;
  } finally {
    db.close();
  }
}

async function pgRows(sql: Sql): Promise<Rows> {
  const rows: Partial<Rows> = {};
  for (const table of COPY_ORDER) {
    const result = await sql.unsafe(
      `SELECT ${COPY_COLUMNS[table].join(", ")} FROM ${table} ORDER BY id`,
    ).values();
    rows[table] = (result as unknown as unknown[][]).map(normalise);
  }
  return rows as Rows;
}

/**
 * A SQLite database with two pools, single- and multi-seat licenses, a
 * license without a pool, leases (one on a seat row), a deleted license (a
 * gap in the ids) and the audit records of all that.
 */
async function seededDatabase(dir: string): Promise<{ db: string; fingerprints: string[] }> {
  const db = `${dir}/relay.sqlite`;
  const { publicKey, files } = await mintFiles(dir, 5, { maxMachines: 3 });
  const add = async (args: string[]) => {
    const result = await runRelay(["--database", db, "add", "--public-key", publicKey, ...args], {
      cwd: dir,
    });
    assert.equal(result.code, 0, result.stderr);
  };
  await add([...fileArgs(files.slice(0, 3)), "--pool", "p1"]);
  await add([...fileArgs(files.slice(3, 4)), "--pool", "p2", "--seats", "3"]);
  await add(fileArgs(files.slice(4, 5)));
  const deleted = await runRelay(["--database", db, "del", "--license", files[1].id], { cwd: dir });
  assert.equal(deleted.code, 0, deleted.stderr);
  const now = Math.floor(Date.now() / 1000);
  const seat =
    query<{ guid: string }>(db, "SELECT guid FROM licenses WHERE seat_of IS NOT NULL")[0];
  const fingerprints = ["node-a", "node-b"];
  lease(db, files[0].id, fingerprints[0], {
    heartbeatAt: now,
    claimedAt: now,
    expiresAt: now + 3600,
  });
  lease(db, seat.guid, fingerprints[1], {
    heartbeatAt: now,
    claimedAt: now,
    expiresAt: now + 3600,
  });
  return { db, fingerprints };
}

Deno.test("relay migrate copies SQLite into PostgreSQL and back, every row identical", async (t) => {
  await using dir = await tempDir();
  await using pg = await testDatabase();
  const { db, fingerprints } = await seededDatabase(dir.path);
  const original = sqliteRows(db);
  assert.equal(original.licenses.length, 6, "3 licenses of p1 less one, 1 with 2 seat rows, 1");
  const back = `${dir.path}/back.sqlite`;

  await t.step("into PostgreSQL", async () => {
    const result = await runRelay(["migrate", "--from", db, "--to", pg.url], { cwd: dir.path });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.equal(
      result.stdout,
      "copied 2 pools, 4 licenses, 2 nodes (2 leases), " +
        `${original.audit_logs.length} audit records\n`,
    );
    assert.deepEqual(await pgRows(pg.sql), original);
    // Analyzed: the planner has statistics for the copied tables at once.
    const analyzed = await pg.sql<{ relname: string }[]>`
      SELECT relname FROM pg_stat_user_tables
      WHERE relname IN ('pools', 'nodes', 'licenses', 'audit_logs') AND last_analyze IS NOT NULL
      ORDER BY relname`;
    assert.deepEqual(analyzed.map((row) => row.relname), [
      "audit_logs",
      "licenses",
      "nodes",
      "pools",
    ]);
  });

  await t.step("and back into a new SQLite file", async () => {
    const result = await runRelay(["migrate", "--from", pg.url, "--to", "back.sqlite"], {
      cwd: dir.path,
    });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.deepEqual(sqliteRows(back), original);
    assert.deepEqual(query(back, FREE_COUNT_MISMATCHES), [], "free_counts kept by the triggers");
    assert.deepEqual(
      query(back, "SELECT pool_key, level, bucket, free FROM free_counts ORDER BY 1, 2, 3"),
      query(db, "SELECT pool_key, level, bucket, free FROM free_counts ORDER BY 1, 2, 3"),
    );
  });

  await t.step("a target that holds rows is refused and left as it was", async () => {
    for (const [from, to] of [[db, pg.url], [pg.url, back], [back, pg.url]]) {
      const result = await runRelay(["migrate", "--from", from, "--to", to], { cwd: dir.path });
      assert.equal(result.code, 1, result.stderr);
      assert.equal(result.stdout, "");
      assert.match(
        result.stderr,
        /^error: Database ".+" is not empty \(2 pools, 2 nodes, 6 licenses, \d+ audit records\): copy into a new or empty database\n$/,
      );
    }
    assert.deepEqual(await pgRows(pg.sql), original);
    assert.deepEqual(sqliteRows(back), original);
  });

  await t.step("rows added after the copy get ids above the copied ones", async () => {
    const max = (table: CopiedTable) => Math.max(...original[table].map((row) => Number(row[0])));
    const [pool] = await pg.sql`INSERT INTO pools (name) VALUES ('p3') RETURNING id`;
    assert.equal(pool.id, max("pools") + 1);
    const [node] = await pg.sql`INSERT INTO nodes (fingerprint) VALUES ('node-c') RETURNING id`;
    assert.equal(node.id, max("nodes") + 1);
    const [audit] = await pg.sql`
      INSERT INTO audit_logs (event_type_id, entity_type_id, entity_id) VALUES (11, 3, 3)
      RETURNING id`;
    assert.equal(audit.id, max("audit_logs") + 1);
    const [license] = await pg.sql`
      INSERT INTO licenses (guid, file, key) VALUES ('g', '\\x00'::bytea, 'k') RETURNING id`;
    // Above the deleted license's id too, as SQLite's AUTOINCREMENT would be.
    assert.ok(Number(license.id) > max("licenses"), `${license.id}`);

    const { publicKey, files } = await mintFiles(dir.path, 1);
    const added = await runRelay(
      ["--database", back, "add", "--public-key", publicKey, ...fileArgs(files)],
      { cwd: dir.path },
    );
    assert.equal(added.code, 0, added.stderr);
    const [row] = query<{ id: number }>(
      back,
      "SELECT id FROM licenses WHERE guid = ?",
      files[0].id,
    );
    assert.ok(row.id > max("licenses"), `${row.id}`);
  });

  await t.step("the copied leases go on: relay serve extends them", async () => {
    await using server = await spawnRelay(
      ["serve", "--bind", "127.0.0.1", "--port", "0", "--database", "back.sqlite"],
      { cwd: dir.path },
    );
    for (const [fingerprint, pool] of [[fingerprints[0], "p1"], [fingerprints[1], "p2"]]) {
      assert.equal((await claim(server.url, fingerprint, pool)).status, 202, fingerprint);
    }
  });
});

Deno.test("relay migrate refuses a missing source, and a database copied into itself", async (t) => {
  await using dir = await tempDir();
  await using pg = await testDatabase();

  await t.step("a missing SQLite file: exit 1, no file created on either end", async () => {
    const result = await runRelay(["migrate", "--from", "nope.sqlite", "--to", "out.sqlite"], {
      cwd: dir.path,
    });
    assert.equal(result.code, 1);
    assert.equal(result.stderr, 'error: Cannot open database "nope.sqlite": no such file\n');
    assert.equal(await exists(`${dir.path}/nope.sqlite`), false);
    assert.equal(await exists(`${dir.path}/out.sqlite`), false);
  });

  await t.step("an empty PostgreSQL database: exit 1, no tables created", async () => {
    const result = await runRelay(["migrate", "--from", pg.url, "--to", "out.sqlite"], {
      cwd: dir.path,
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: Database "postgres:.+" is not a Relay database/);
    const tables = await pg.sql`
      SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`;
    assert.deepEqual([...tables], []);
    assert.equal(await exists(`${dir.path}/out.sqlite`), false);
  });

  await t.step("the same database on both ends: a usage error", async () => {
    const result = await runRelay(["migrate", "--from", pg.url, "--to", pg.url], {
      cwd: dir.path,
    });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /into itself/);
  });
});

Deno.test("relay migrate --help shows its flags and an example", async () => {
  await using dir = await tempDir();
  const result = await runCli(["migrate", "--help"], { cwd: dir.path });
  assert.equal(result.code, 0, result.stderr);
  for (
    const text of [
      "Usage: relay migrate [options]",
      "--from <url|path>",
      "--to <url|path>",
      "relay migrate --from ./relay.sqlite --to postgres://relay@db.internal:5432/relay",
    ]
  ) {
    assert.ok(result.stdout.includes(text), `${text} in ${result.stdout}`);
  }
  // Both are required.
  const missing = await runCli(["migrate", "--from", "a.sqlite"], { cwd: dir.path });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--to <url\|path>' not specified/);
});
