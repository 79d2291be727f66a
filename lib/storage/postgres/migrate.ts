/**
 * Schema state of a PostgreSQL database: which of {@link PG_MIGRATIONS} it
 * has, the refusal of databases Relay must not touch (foreign tables, a newer
 * Relay), and applying the pending steps.
 *
 * Everything happens in one transaction under an advisory lock, so several
 * replicas of `relay serve` starting together on a new database apply each
 * step once: the others wait, then find the schema current.
 *
 * @module
 */

import { DatabaseError, DatabaseTooNewError } from "../../errors.ts";
import type { Sql, TxSql } from "./connect.ts";
import { PG_MIGRATIONS, type PgMigration } from "./schema.ts";

/** The advisory lock (one 64-bit key) held while the schema is read and migrated. */
export const MIGRATION_LOCK = 0x52454c41_59000001n;

/** Where a database's schema stands. */
export interface PgSchemaState {
  /** The newest Relay step applied (0 for an empty database). */
  applied: number;
  /** Whether `relay_migrations` exists. */
  tracked: boolean;
}

/**
 * Reads where the schema stands (in the current schema, `search_path`'s
 * first), refusing databases that Relay must not touch. Only reads.
 *
 * @throws {DatabaseError} tables that are not Relay's.
 * @throws {DatabaseTooNewError} a newer Relay wrote it.
 */
export async function pgSchemaState(
  sql: Sql | TxSql,
  { name, known }: { name: string; known: number },
): Promise<PgSchemaState> {
  const tables = await sql<{ name: string }[]>`
    SELECT table_name AS name FROM information_schema.tables
    WHERE table_schema = current_schema()`;
  const tracked = tables.some((table) => table.name === "relay_migrations");
  if (!tracked && tables.length > 0) {
    throw new DatabaseError(
      `Database "${name}" holds tables that are not Relay's; pass an empty database or a Relay database with --database`,
    );
  }
  const applied = tracked
    ? Number((await sql`SELECT max(version) AS version FROM relay_migrations`)[0].version ?? 0)
    : 0;
  if (applied > known) {
    throw new DatabaseTooNewError(
      `Database "${name}" was written by a newer Relay (schema version ${applied}, this Relay knows up to ${known}); upgrade Relay to use it`,
    );
  }
  return { applied, tracked };
}

/**
 * Brings the schema up to date in one transaction under
 * {@link MIGRATION_LOCK}. `now` (unix seconds) is recorded with each step.
 * `create: false` refuses an empty database instead of creating the schema
 * (commands that only read).
 *
 * @throws {DatabaseError} foreign tables, or an empty database with `create: false`.
 * @throws {DatabaseTooNewError} a newer Relay wrote it.
 */
export async function migratePostgres(
  sql: Sql,
  options: {
    name: string;
    now: number;
    create?: boolean;
    migrations?: readonly PgMigration[];
  },
): Promise<void> {
  const migrations = options.migrations ?? PG_MIGRATIONS;
  const known = migrations[migrations.length - 1].version;
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK.toString()}::bigint)`;
    const state = await pgSchemaState(tx, { name: options.name, known });
    if (!state.tracked) {
      if (options.create === false) {
        throw new DatabaseError(
          `Database "${options.name}" is not a Relay database (no tables): run relay serve or relay add first`,
        );
      }
      await tx.unsafe(`CREATE TABLE relay_migrations (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at BIGINT NOT NULL
      )`);
    }
    for (const migration of migrations) {
      if (migration.version <= state.applied) continue;
      await tx.unsafe(migration.sql);
      await tx`INSERT INTO relay_migrations (version, name, applied_at)
        VALUES (${migration.version}, ${migration.name}, ${options.now})`;
    }
  });
}
