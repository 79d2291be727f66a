/**
 * What `relay migrate` copies between two databases, whatever their
 * engines: the tables of Relay's data, their columns (the same names, in the
 * same order, on SQLite and PostgreSQL at one schema version), and the two
 * sides an engine implements, a reader of one snapshot and a writer of one
 * transaction (`./sqlite/table_copy.ts`, `./postgres/table_copy.ts`).
 *
 * @module
 */

/** A table whose rows are copied, ids and all. */
export type CopiedTable = "pools" | "nodes" | "licenses" | "audit_logs";

/**
 * The copied tables in the order they are copied: a row's references come
 * before it (a license's node and pool; a seat row's main row, which has a
 * smaller id, within licenses).
 */
export const COPY_ORDER: readonly CopiedTable[] = ["pools", "nodes", "licenses", "audit_logs"];

/**
 * The columns of each copied table at the current schema version (SQLite's
 * step 11, PostgreSQL's first step); `id` first. Tables that only describe
 * the schema (`event_types`, `entity_types`, `schema_migrations`,
 * `relay_migrations`) or derive from the rows (`free_counts`, `relay_health`)
 * are the target's own.
 */
export const COPY_COLUMNS: Readonly<Record<CopiedTable, readonly string[]>> = {
  pools: ["id", "name", "created_at"],
  nodes: [
    "id",
    "fingerprint",
    "last_heartbeat_at",
    "created_at",
    "deactivated_at",
    "lease_expires_at",
    "holder_type",
  ],
  licenses: [
    "id",
    "guid",
    "file",
    "key",
    "claims",
    "last_claimed_at",
    "last_released_at",
    "node_id",
    "pool_id",
    "created_at",
    "file_issued_at",
    "file_expires_at",
    "expires_at",
    "seat_of",
    "max_machines",
    "max_users",
  ],
  audit_logs: ["id", "event_type_id", "entity_type_id", "entity_id", "created_at", "pool_id"],
};

/** One value of a copied row: integers, text, a license file's bytes, or NULL. */
export type CopyValue = number | string | Uint8Array | null;

/** One row, its values in the order of {@link COPY_COLUMNS}. */
export type CopyRow = readonly CopyValue[];

/** The source side: reads one consistent snapshot of the copied tables. */
export interface TableReader {
  /** Up to `limit` rows of `table` whose id is greater than `after`, by id. */
  rows(table: CopiedTable, page: { after: number; limit: number }): Promise<CopyRow[]>;
}

/** The target side: one open transaction on a database at the current schema. */
export interface TableWriter {
  /** How many rows `table` holds. */
  count(table: CopiedTable): Promise<number>;
  /** Inserts `rows` into `table` as they are, ids included. */
  insert(table: CopiedTable, rows: readonly CopyRow[]): Promise<void>;
}
