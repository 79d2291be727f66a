/**
 * `relay migrate` on PostgreSQL: reading the copied tables of a database in
 * one snapshot without changing it, and writing them into one in one
 * transaction (`../copy.ts` runs the copy).
 *
 * @module
 */

import { DatabaseError } from "../../errors.ts";
import {
  type CopiedTable,
  COPY_COLUMNS,
  COPY_ORDER,
  type CopyRow,
  type TableReader,
  type TableWriter,
} from "../copy_tables.ts";
import { connectPostgres, redactUrl, type Sql, type TxSql } from "./connect.ts";
import { asDatabaseError } from "./errors.ts";
import { migratePostgres, pgSchemaState } from "./migrate.ts";
import { PG_SCHEMA_VERSION } from "./schema.ts";

/** Most parameters PostgreSQL takes in one statement. */
const MAX_PARAMETERS = 65_535;

/** How a copy connects: the password when the URL has none. */
export interface PgCopyOptions {
  password?: string;
}

/**
 * Runs `fn` on one snapshot of the PostgreSQL database at `url` (a
 * `REPEATABLE READ READ ONLY` transaction: `relay serve` may go on writing
 * meanwhile), which must hold Relay's schema at this Relay's version.
 * Changes nothing.
 *
 * @throws {DatabaseError} not a Relay database, or one at an older schema version.
 * @throws {DatabaseTooNewError} a newer Relay wrote it.
 * @throws {DatabaseUnavailableError} the server cannot be reached.
 */
export function readPgTables<T>(
  url: string,
  options: PgCopyOptions,
  fn: (reader: TableReader) => Promise<T>,
): Promise<T> {
  const name = redactUrl(url);
  return withConnection(
    url,
    options,
    (sql) =>
      sql.begin("ISOLATION LEVEL REPEATABLE READ READ ONLY", async (tx) => {
        const { applied } = await pgSchemaState(tx, { name, known: PG_SCHEMA_VERSION });
        if (applied === 0) {
          throw new DatabaseError(`Database "${name}" is not a Relay database (no tables)`);
        }
        if (applied !== PG_SCHEMA_VERSION) {
          throw new DatabaseError(
            `Database "${name}" is at schema version ${applied}, not ${PG_SCHEMA_VERSION}: open it once with this Relay to bring it up to date, then copy it`,
          );
        }
        return await fn({
          async rows(table, { after, limit }) {
            return await tx.unsafe(
              `SELECT ${COPY_COLUMNS[table].join(", ")} FROM ${table}
             WHERE id > $1 ORDER BY id LIMIT $2`,
              [after, limit],
            ).values() as unknown as CopyRow[];
          },
        });
      }) as Promise<T>,
  );
}

/**
 * Brings the PostgreSQL database at `url` to this Relay's schema (creating
 * it in an empty database), then runs `fn` in one transaction that commits
 * when `fn` resolves and rolls back when it throws. The copied tables are
 * locked against other writers meanwhile. Ids are inserted as they are; each
 * table's id sequence is then moved past the largest, so that rows added
 * later get new ids.
 *
 * @throws {DatabaseError} tables that are not Relay's, or a failed statement.
 * @throws {DatabaseTooNewError} a newer Relay wrote it.
 * @throws {DatabaseUnavailableError} the server cannot be reached.
 */
export function writePgTables<T>(
  url: string,
  options: PgCopyOptions & { now: number },
  fn: (writer: TableWriter) => Promise<T>,
): Promise<T> {
  return withConnection(url, options, async (sql) => {
    await migratePostgres(sql, { name: redactUrl(url), now: options.now, create: true });
    const result = await sql.begin(async (tx) => {
      await tx.unsafe(`LOCK TABLE ${COPY_ORDER.join(", ")} IN EXCLUSIVE MODE`);
      const result = await fn({
        async count(table) {
          const [row] = await tx.unsafe(`SELECT count(*) AS n FROM ${table}`);
          return Number(row.n);
        },
        insert: (table, rows) => insertRows(tx, table, rows),
      });
      for (const table of COPY_ORDER) {
        // The next id is one past the largest (1 for an empty table).
        await tx.unsafe(
          `SELECT setval(pg_get_serial_sequence('${table}', 'id'),
             COALESCE((SELECT max(id) FROM ${table}), 1),
             (SELECT max(id) IS NOT NULL FROM ${table}))`,
        );
      }
      return result;
    }) as T;
    // Statistics for the planner now, not at autovacuum's next look: without
    // them it may sort a pool's free licenses for every claim.
    await sql.unsafe(`ANALYZE ${COPY_ORDER.join(", ")}`);
    return result;
  });
}

/** Inserts `rows` with as few statements as the parameter limit allows. */
async function insertRows(tx: TxSql, table: CopiedTable, rows: readonly CopyRow[]): Promise<void> {
  const columns = COPY_COLUMNS[table];
  const perStatement = Math.floor(MAX_PARAMETERS / columns.length);
  for (let start = 0; start < rows.length; start += perStatement) {
    const chunk = rows.slice(start, start + perStatement);
    const values = chunk.map((_, i) =>
      `(${columns.map((_, j) => `$${i * columns.length + j + 1}`).join(", ")})`
    );
    await tx.unsafe(
      `INSERT INTO ${table} (${columns.join(", ")}) VALUES ${values.join(", ")}`,
      chunk.flat() as never[],
    );
  }
}

/** Runs `fn` with a connection to `url`, closed afterwards; its failures as Relay's errors. */
async function withConnection<T>(
  url: string,
  options: PgCopyOptions,
  fn: (sql: Sql) => Promise<T>,
): Promise<T> {
  const sql = connectPostgres(url, {
    password: options.password,
    max: 1,
    applicationName: "relay migrate",
  });
  try {
    return await fn(sql);
  } catch (error) {
    throw asDatabaseError(error);
  } finally {
    await sql.end({ timeout: 5 });
  }
}
