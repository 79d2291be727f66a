/**
 * Schema state of a SQLite database: which of {@link MIGRATIONS} it has, the
 * refusal of files Relay must not touch (foreign tables, a newer Relay, a
 * half-migrated reference database), the adoption of a database written by
 * the reference Relay, and applying the pending steps.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import { DatabaseError, DatabaseTooNewError } from "../../errors.ts";
import { type Migration, MIGRATIONS, REFERENCE_SCHEMA_VERSION } from "./schema.ts";

/** Where a database's schema stands. */
export interface SchemaState {
  /** Relay migrations applied (0 for a new file). */
  applied: number;
  /** Whether `relay_migrations` exists. */
  tracked: boolean;
  /** Whether the reference Relay's schema is present. */
  reference: boolean;
}

/**
 * Reads where the schema stands, refusing databases that Relay must not
 * touch. Only reads, so a refused file is left exactly as it was.
 *
 * @throws {DatabaseError} foreign tables, or a reference database that is not
 *   at its final, clean version.
 * @throws {DatabaseTooNewError} a newer Relay (or Keygen Relay) wrote it.
 */
export function schemaState(
  db: DatabaseSync,
  { path, known = MIGRATIONS.length }: { path: string; known?: number },
): SchemaState {
  const tables = new Set(
    db.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    ).all().map((row) => String(row.name)),
  );
  const reference = tables.has("schema_migrations") && checkReferenceSchema(db, path);
  const tracked = tables.has("relay_migrations");
  if (!tracked && !reference && tables.size > 0) {
    throw new DatabaseError(
      `Database "${path}" holds tables that are not Relay's; pass a new file or a Relay database with --database`,
    );
  }
  const applied = tracked
    ? Number(db.prepare("SELECT max(version) AS version FROM relay_migrations").get()?.version ?? 0)
    : 0;
  if (applied > known) {
    throw new DatabaseTooNewError(
      `Database "${path}" was written by a newer Relay (schema version ${applied}, this Relay knows up to ${known}); upgrade Relay to use it`,
    );
  }
  return { applied, tracked, reference };
}

/**
 * Brings the schema up to date inside one `BEGIN IMMEDIATE` transaction, so
 * two processes opening a new file at once apply each step exactly once.
 * `now` (unix seconds) is recorded with each step applied.
 */
export function migrate(
  db: DatabaseSync,
  path: string,
  options: { now: number; migrations?: readonly Migration[] },
): void {
  const migrations = options.migrations ?? MIGRATIONS;
  db.exec("BEGIN IMMEDIATE");
  try {
    const state = schemaState(db, { path, known: migrations.length });
    let current = state.applied;
    const record = () =>
      db.prepare("INSERT INTO relay_migrations (version, name, applied_at) VALUES (?, ?, ?)");
    if (!state.tracked) {
      db.exec(`CREATE TABLE relay_migrations (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at INTEGER NOT NULL
      )`);
      // A database of the reference Relay already has step 1's schema.
      if (state.reference) {
        record().run(1, migrations[0].name, options.now);
        current = 1;
      }
    }
    for (const migration of migrations.slice(current)) {
      db.exec(migration.sql);
      record().run(migration.version, migration.name, options.now);
    }
    db.exec("COMMIT");
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
}

/**
 * Checks golang-migrate's record of a database written by the reference
 * Relay: only its final, clean version can be carried forward.
 */
function checkReferenceSchema(db: DatabaseSync, path: string): true {
  const row = db.prepare("SELECT version, dirty FROM schema_migrations LIMIT 1").get();
  if (!row) {
    throw new DatabaseError(
      `Database "${path}" has an empty schema_migrations table; it was not fully created by Keygen Relay`,
    );
  }
  const version = Number(row.version);
  if (Number(row.dirty) !== 0) {
    throw new DatabaseError(
      `Database "${path}" was left mid-migration by Keygen Relay (version ${version}, dirty); restore it from a backup`,
    );
  }
  if (version > REFERENCE_SCHEMA_VERSION) {
    throw new DatabaseTooNewError(
      `Database "${path}" was written by a newer Keygen Relay (schema version ${version}, this Relay knows up to ${REFERENCE_SCHEMA_VERSION}); upgrade Relay to use it`,
    );
  }
  if (version < REFERENCE_SCHEMA_VERSION) {
    throw new DatabaseError(
      `Database "${path}" was written by an older Keygen Relay (schema version ${version}); open it once with Keygen Relay 1.3 to bring it to version ${REFERENCE_SCHEMA_VERSION}, then use it here`,
    );
  }
  return true;
}
