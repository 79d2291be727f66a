/**
 * Copying a Relay database into another, across engines (SQLite file ⇄
 * PostgreSQL, or one engine to itself): `relay migrate`. The source is read
 * in one snapshot and never changed; the target gets this Relay's schema and
 * every pool, node, license (seat rows and leases included) and audit record,
 * ids and all, in one transaction, streamed in batches so that a large audit
 * log never sits in memory at once.
 *
 * @module
 */

import { DatabaseError, UsageError } from "../errors.ts";
import {
  type CopiedTable,
  COPY_COLUMNS,
  COPY_ORDER,
  type CopyRow,
  type TableReader,
  type TableWriter,
} from "./copy_tables.ts";
import { isPostgresUrl, redactUrl } from "./postgres/url.ts";
import { readSqliteTables, writeSqliteTables } from "./sqlite/table_copy.ts";

/** One side of a copy: a SQLite path or a PostgreSQL URL, with the URL's password if apart. */
export interface CopyEnd {
  location: string;
  /** A PostgreSQL password when the URL has none. */
  password?: string;
}

/** Options of {@link copyDatabase}. */
export interface CopyOptions {
  /** Unix seconds, recorded with the target's schema steps. */
  now: number;
  /** Rows read and written at a time (default 1000). */
  batchSize?: number;
}

/** What was copied. */
export interface CopyResult {
  pools: number;
  /** Licenses as `relay ls` counts them: a multi-seat license once. */
  licenses: number;
  /** Nodes and users, active or not. */
  nodes: number;
  /** License rows (seat rows included) leased at the time of the copy. */
  leases: number;
  auditRecords: number;
}

/**
 * Copies the database `from` into `to`: refuses a missing source, a target
 * that holds any pool, node, license or audit record (leaving it as it
 * was), and the same database on both ends. The target's id sequences are
 * moved past the copied ids.
 *
 * @throws {UsageError} `from` and `to` name the same database.
 * @throws {DatabaseError} the source is missing, not Relay's or not at this
 *   Relay's schema version; the target is not empty, or either fails.
 * @throws {DatabaseTooNewError} a newer Relay wrote one of them.
 * @throws {DatabaseUnavailableError} a PostgreSQL server cannot be reached.
 */
export function copyDatabase(
  from: CopyEnd,
  to: CopyEnd,
  options: CopyOptions,
): Promise<CopyResult> {
  if (from.location === to.location) {
    return Promise.reject(
      new UsageError(`Cannot copy database "${nameOf(from)}" into itself: give another --to`),
    );
  }
  const batchSize = options.batchSize ?? 1000;
  return readTables(from, (reader) =>
    writeTables(to, options.now, async (writer) => {
      await refuseNonEmpty(writer, nameOf(to));
      const result: CopyResult = { pools: 0, licenses: 0, nodes: 0, leases: 0, auditRecords: 0 };
      for (const table of COPY_ORDER) {
        await copyTable(reader, writer, { table, batchSize, counted: result });
      }
      return result;
    }));
}

/** Copies one table in batches by id, counting what the summary shows. */
async function copyTable(
  reader: TableReader,
  writer: TableWriter,
  options: { table: CopiedTable; batchSize: number; counted: CopyResult },
): Promise<void> {
  const { table, batchSize, counted } = options;
  const column = (name: string) => COPY_COLUMNS.licenses.indexOf(name);
  const [nodeId, seatOf] = [column("node_id"), column("seat_of")];
  let after = 0;
  while (true) {
    const rows = await reader.rows(table, { after, limit: batchSize });
    if (rows.length === 0) return;
    await writer.insert(table, rows);
    after = Number(rows[rows.length - 1][0]);
    switch (table) {
      case "pools":
        counted.pools += rows.length;
        break;
      case "nodes":
        counted.nodes += rows.length;
        break;
      case "licenses":
        counted.licenses += count(rows, (row) => row[seatOf] === null);
        counted.leases += count(rows, (row) => row[nodeId] !== null);
        break;
      case "audit_logs":
        counted.auditRecords += rows.length;
    }
    if (rows.length < batchSize) return;
  }
}

/**
 * @throws {DatabaseError} the target holds a row of a copied table.
 */
async function refuseNonEmpty(writer: TableWriter, name: string): Promise<void> {
  const held: string[] = [];
  for (const table of COPY_ORDER) {
    const rows = await writer.count(table);
    if (rows > 0) held.push(`${rows} ${table === "audit_logs" ? "audit records" : table}`);
  }
  if (held.length > 0) {
    throw new DatabaseError(
      `Database "${name}" is not empty (${held.join(", ")}): copy into a new or empty database`,
    );
  }
}

function readTables<T>(end: CopyEnd, fn: (reader: TableReader) => Promise<T>): Promise<T> {
  return isPostgresUrl(end.location)
    ? import("./postgres/table_copy.ts").then((pg) =>
      pg.readPgTables(end.location, { password: end.password }, fn)
    )
    : readSqliteTables(end.location, fn);
}

function writeTables<T>(
  end: CopyEnd,
  now: number,
  fn: (writer: TableWriter) => Promise<T>,
): Promise<T> {
  return isPostgresUrl(end.location)
    ? import("./postgres/table_copy.ts").then((pg) =>
      pg.writePgTables(end.location, { password: end.password, now }, fn)
    )
    : writeSqliteTables(end.location, { now }, fn);
}

/** A database as messages name it: a URL without its password. */
function nameOf(end: CopyEnd): string {
  return isPostgresUrl(end.location) ? redactUrl(end.location) : end.location;
}

function count(rows: readonly CopyRow[], test: (row: CopyRow) => boolean): number {
  return rows.reduce((sum, row) => sum + (test(row) ? 1 : 0), 0);
}
