/**
 * What `relay doctor` reads of a SQLite database, without changing it: the
 * modes and owners of its files, `integrity_check`, `foreign_key_check`,
 * where its schema stands, the rows behind the clock, expiry and lease
 * checks, and whether it would accept a write. No migration is applied and no
 * pragma that writes is set (`./query_only.ts`).
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import { DatabaseError, DatabaseTooNewError } from "../../errors.ts";
import type {
  DatabaseContents,
  DatabaseFile,
  ExpiringLicense,
  Inspection,
  OverdueLease,
  SchemaStatus,
} from "../store.ts";
import { reason } from "./errors.ts";
import { schemaState } from "./migrate.ts";
import { openQueryOnly, writeRefusal } from "./query_only.ts";
import { requireFile } from "./sqlite_store.ts";
import { MIGRATIONS, VALID_UNTIL } from "./schema.ts";

/** Options of {@link inspectSqlite}. */
export interface InspectOptions {
  /** Unix seconds: leases whose stored expiry is at or before it are overdue. */
  now: number;
  /** Unix seconds: licenses valid until at or before it are listed as expiring. */
  expiringBy: number;
}

/** How many findings of `integrity_check` are kept. */
const INTEGRITY_FINDINGS = 20;

/**
 * Inspects the SQLite database at `path`.
 *
 * @throws {DatabaseError} no file at `path` (none is created), or SQLite
 *   cannot open it at all.
 */
export function inspectSqlite(path: string, options: InspectOptions): Inspection {
  requireFile(path);
  // Looked at before the connection, which may create -wal and -shm for its time.
  const files = databaseFiles(path);
  const db = openQueryOnly(path);
  const inspection: Inspection = {
    files,
    unreadable: null,
    integrity: [],
    foreignKeyViolations: [],
    foreignKeyError: null,
    schema: null,
    contents: null,
    contentsError: null,
    writeRefusal: null,
  };
  try {
    try {
      // A finding may span lines, under a `*** in database main ***` heading.
      inspection.integrity = db.prepare(`PRAGMA integrity_check(${INTEGRITY_FINDINGS})`).all()
        .flatMap((row) => String(row.integrity_check).split("\n"))
        .filter((line) => line !== "" && !line.startsWith("*** "));
    } catch (error) {
      inspection.unreadable = reason(error);
      return inspection;
    }
    try {
      inspection.foreignKeyViolations = db.prepare("PRAGMA foreign_key_check").all().map((row) => ({
        table: String(row.table),
        rowid: row.rowid === null ? null : Number(row.rowid),
        parent: String(row.parent),
      }));
    } catch (error) {
      inspection.foreignKeyError = reason(error);
    }
    try {
      inspection.schema = schemaStatus(db, path);
    } catch (error) {
      inspection.schema = {
        kind: "unusable",
        problem: `its schema cannot be read: ${reason(error)}`,
      };
    }
    if (inspection.schema.kind === "current") {
      try {
        inspection.contents = contents(db, options);
      } catch (error) {
        inspection.contentsError = reason(error);
      }
    }
    inspection.writeRefusal = writeRefusal(db);
    return inspection;
  } finally {
    db.close();
  }
}

/** The database file and whichever of its `-wal` and `-shm` exist. */
function databaseFiles(path: string): DatabaseFile[] {
  const files: DatabaseFile[] = [];
  for (const [suffix, role] of [["", "database"], ["-wal", "wal"], ["-shm", "shm"]] as const) {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(`${path}${suffix}`);
    } catch (error) {
      if (role !== "database" && error instanceof Deno.errors.NotFound) continue;
      throw new DatabaseError(`Cannot open database "${path}": ${reason(error)}`, {
        cause: error,
      });
    }
    files.push({
      path: `${path}${suffix}`,
      role,
      mode: info.mode === null ? null : info.mode & 0o777,
      uid: info.uid,
    });
  }
  return files;
}

/** Where the schema stands; refusals become `newer` or `unusable` rather than errors. */
function schemaStatus(db: DatabaseSync, path: string): SchemaStatus {
  const latest = MIGRATIONS.length;
  try {
    const state = schemaState(db, { path, known: latest });
    if (!state.tracked && state.reference) return { kind: "reference", latest };
    if (state.applied < latest) return { kind: "behind", version: state.applied, latest };
    return { kind: "current", version: state.applied };
  } catch (error) {
    if (error instanceof DatabaseTooNewError) return { kind: "newer", problem: error.message };
    if (error instanceof DatabaseError) return { kind: "unusable", problem: error.message };
    throw error;
  }
}

/** The rows the doctor's data checks need, at the current schema. */
function contents(db: DatabaseSync, { now, expiringBy }: InspectOptions): DatabaseContents {
  const scalar = (sql: string): number | null => {
    const value = db.prepare(sql).get()?.value;
    return value === null || value === undefined ? null : Number(value);
  };
  const expiring = db.prepare(
    `SELECT guid, file_expires_at AS fileExpiresAt, expires_at AS expiresAt FROM licenses
     WHERE ${VALID_UNTIL} <= ? AND seat_of IS NULL ORDER BY ${VALID_UNTIL}, id`,
  ).all(expiringBy).map((row): ExpiringLicense => ({
    guid: String(row.guid),
    fileExpiresAt: row.fileExpiresAt === null ? null : Number(row.fileExpiresAt),
    expiresAt: row.expiresAt === null ? null : Number(row.expiresAt),
  }));
  const overdueLeases = db.prepare(
    `SELECT n.fingerprint, IFNULL(m.guid, l.guid) AS guid, n.lease_expires_at AS leaseExpiresAt
     FROM nodes n JOIN licenses l ON l.node_id = n.id LEFT JOIN licenses m ON m.id = l.seat_of
     WHERE n.deactivated_at IS NULL AND n.lease_expires_at <= ?
     ORDER BY n.lease_expires_at, n.id`,
  ).all(now).map((row): OverdueLease => ({
    fingerprint: String(row.fingerprint),
    license: String(row.guid),
    leaseExpiresAt: Number(row.leaseExpiresAt),
  }));
  return {
    // A multi-seat license counts once (its seat rows are not licenses).
    licenses: scalar("SELECT count(*) AS value FROM licenses WHERE seat_of IS NULL") ?? 0,
    expiring,
    overdueLeases,
    newestAudit: scalar("SELECT max(created_at) AS value FROM audit_logs"),
    newestHeartbeat: scalar("SELECT max(last_heartbeat_at) AS value FROM nodes"),
  };
}
