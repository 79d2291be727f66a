/**
 * What `relay doctor` reads of a PostgreSQL database, without changing it:
 * the server (its version, connections, sessions stuck in a transaction or
 * waiting for a lock), invalid indexes (and `amcheck` where it is
 * installed), rows that point to rows that do not exist, where the schema
 * stands, the rows behind the clock, expiry and lease checks, the size of
 * the audit log, and whether a write would be accepted: the health probe's
 * row is written in a transaction that is always rolled back. No migration
 * is applied and nothing is committed; an empty database is refused.
 *
 * @module
 */

import { DatabaseError, DatabaseTooNewError, RelayError } from "../../errors.ts";
import type {
  DatabaseContents,
  ExpiringLicense,
  Inspection,
  OverdueLease,
  SchemaStatus,
} from "../store.ts";
import { connectPostgres, redactUrl, type Sql, type TxSql } from "./connect.ts";
import { asDatabaseError } from "./errors.ts";
import { pgSchemaState } from "./migrate.ts";
import { PG_SCHEMA_VERSION, VALID_UNTIL } from "./schema.ts";

/** Options of {@link inspectPostgres}. */
export interface PgInspectOptions {
  /** Unix seconds: leases whose stored expiry is at or before it are overdue. */
  now: number;
  /** Unix seconds: licenses valid until at or before it are listed as expiring. */
  expiringBy: number;
  /** The password, when the URL has none. */
  password?: string;
}

/** A connection to the database that sits in a transaction or waits for a lock. */
export interface StuckSession {
  pid: number;
  /** `idle in transaction`: it holds its locks and does nothing; `waiting`: for a lock. */
  kind: "idle in transaction" | "waiting";
  /** Seconds it has been so. */
  seconds: number;
  /** Its `application_name` (`relay` for Relay's), maybe empty. */
  application: string;
  /** Its client address; null for a Unix socket or when not visible. */
  client: string | null;
  /** The connections it waits for (`waiting` only). */
  blockedBy: number[];
}

/** What is read of the server beside the database's rows. */
export interface ServerState {
  /** `server_version`: `15.8 (Debian 15.8-1.pgdg120+1)`. */
  version: string;
  /** Whether it is a standby (in recovery): it accepts no writes. */
  standby: boolean;
  /** Client connections to the whole server, and what it allows. */
  connections: { used: number; max: number; reservedForSuperusers: number };
  /** Connections to this database idle in a transaction or waiting for a lock, longest first. */
  stuck: StuckSession[];
  /** How many indexes `amcheck` checked; null: it is not installed (or may not be run). */
  amcheckedIndexes: number | null;
  /** The audit log: rows (the planner's estimate), bytes on disk, its oldest record. */
  audit: { rows: number; bytes: number; oldest: number | null } | null;
}

/** An {@link Inspection} of a PostgreSQL database: no files, and its server's state. */
export interface PostgresInspection extends Inspection {
  /** The database as messages name it: its URL without the password. */
  name: string;
  server: ServerState;
}

/** How many findings of a check are kept. */
const FINDINGS = 20;

/** Connections idle in a transaction or waiting for this long (seconds) or longer are reported. */
export const STUCK_SECONDS = 10;

/** Statements are prepared once per connection, by their text. */
const PREPARED = { prepare: true } as const;

/**
 * Inspects the PostgreSQL database at `url`.
 *
 * @throws {DatabaseUnavailableError} the server cannot be reached.
 * @throws {DatabaseError} it refuses the connection (no such database, a
 *   wrong password), or the database is empty (no tables are created).
 */
export async function inspectPostgres(
  url: string,
  options: PgInspectOptions,
): Promise<PostgresInspection> {
  const name = redactUrl(url);
  const sql = connectPostgres(url, {
    password: options.password,
    max: 1,
    applicationName: "relay doctor",
  });
  try {
    return await inspect(sql, name, options);
  } catch (error) {
    const failure = asDatabaseError(error);
    if (failure instanceof RelayError) throw failure;
    throw new DatabaseError(`Cannot use database "${name}": ${reason(failure)}`, {
      cause: error,
    });
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

async function inspect(sql: Sql, name: string, options: PgInspectOptions) {
  const [server] = await sql<{ version: string; standby: boolean }[]>`
    SELECT current_setting('server_version') AS "version", pg_is_in_recovery() AS "standby"`;
  const schema = await schemaStatus(sql, name);
  const inspection: PostgresInspection = {
    name,
    files: [],
    unreadable: null,
    integrity: [],
    foreignKeyViolations: [],
    foreignKeyError: null,
    schema,
    contents: null,
    contentsError: null,
    writeRefusal: null,
    server: {
      ...server,
      connections: await connections(sql),
      stuck: await stuckSessions(sql),
      amcheckedIndexes: null,
      audit: null,
    },
  };
  inspection.integrity = await invalidIndexes(sql);
  try {
    const checked = await amcheck(sql);
    inspection.server.amcheckedIndexes = checked.indexes;
    inspection.integrity = [...inspection.integrity, ...checked.findings];
  } catch (error) {
    // Damage amcheck reports is a finding; a permission it lacks is "not run".
    if (sqlState(error) === "XX002") inspection.integrity.push(reason(error));
    else if (sqlState(error) !== "42501") throw error;
  }
  if (inspection.integrity.length === 0) inspection.integrity = ["ok"];
  try {
    inspection.foreignKeyViolations = await foreignKeyViolations(sql);
  } catch (error) {
    inspection.foreignKeyError = reason(asDatabaseError(error));
  }
  if (schema.kind === "current") {
    try {
      await sql.begin("isolation level repeatable read read only", async (tx) => {
        inspection.contents = await contents(tx, options);
        inspection.server.audit = await auditSize(tx);
      });
    } catch (error) {
      inspection.contentsError = reason(asDatabaseError(error));
    }
  }
  inspection.writeRefusal = await writeRefusal(sql, options.now);
  return inspection;
}

/**
 * Where the schema stands; a database Relay must not touch becomes `newer`
 * or `unusable`.
 *
 * @throws {DatabaseError} the database is empty.
 */
async function schemaStatus(sql: Sql, name: string): Promise<SchemaStatus> {
  try {
    const state = await pgSchemaState(sql, { name, known: PG_SCHEMA_VERSION });
    if (!state.tracked) {
      throw new DatabaseError(
        `Database "${name}" is not a Relay database (no tables): run relay serve or relay add first`,
      );
    }
    if (state.applied < PG_SCHEMA_VERSION) {
      return { kind: "behind", version: state.applied, latest: PG_SCHEMA_VERSION };
    }
    return { kind: "current", version: state.applied };
  } catch (error) {
    if (error instanceof DatabaseTooNewError) return { kind: "newer", problem: error.message };
    if (error instanceof DatabaseError && /not Relay's/.test(error.message)) {
      return { kind: "unusable", problem: error.message };
    }
    throw error;
  }
}

/** Client connections to the server, and how many it allows. */
async function connections(sql: Sql): Promise<ServerState["connections"]> {
  const [row] = await sql<ServerState["connections"][]>`
    SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS "used",
           current_setting('max_connections')::int AS "max",
           current_setting('superuser_reserved_connections')::int AS "reservedForSuperusers"`;
  return row;
}

/** Connections to this database idle in a transaction or waiting for a lock, longest first. */
async function stuckSessions(sql: Sql): Promise<StuckSession[]> {
  const rows = await sql<StuckSession[]>`
    SELECT pid AS "pid", kind AS "kind", floor(seconds)::bigint AS "seconds",
           COALESCE(application_name, '') AS "application", host(client_addr) AS "client",
           blocked_by AS "blockedBy"
    FROM (
      SELECT pid, application_name, client_addr, pg_blocking_pids(pid)::bigint[] AS blocked_by,
             CASE WHEN state LIKE 'idle in transaction%' THEN 'idle in transaction'
                  ELSE 'waiting' END AS kind,
             extract(epoch FROM now() - CASE WHEN state LIKE 'idle in transaction%'
                  THEN state_change ELSE query_start END) AS seconds
      FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND (state LIKE 'idle in transaction%'
             OR (state = 'active' AND wait_event_type = 'Lock'))
    ) AS sessions
    WHERE seconds >= ${STUCK_SECONDS}
    ORDER BY seconds DESC, pid
    LIMIT ${FINDINGS}`;
  return [...rows];
}

/** The indexes of this schema that are not valid or not ready (a failed concurrent build). */
async function invalidIndexes(sql: Sql): Promise<string[]> {
  const rows = await sql<{ name: string; table: string }[]>`
    SELECT c.relname AS "name", t.relname AS "table"
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_class t ON t.oid = i.indrelid
    WHERE c.relnamespace = current_schema()::regnamespace
      AND NOT (i.indisvalid AND i.indisready)
    ORDER BY c.relname
    LIMIT ${FINDINGS}`;
  return rows.map((row) => `index ${row.name} on ${row.table} is invalid`);
}

/**
 * `bt_index_check` of each B-tree index of this schema, when the `amcheck`
 * extension is installed in the database (it is never installed here).
 */
async function amcheck(sql: Sql): Promise<{ indexes: number | null; findings: string[] }> {
  const [installed] = await sql<{ schema: string | null }[]>`
    SELECT (SELECT extnamespace::regnamespace::text FROM pg_extension
            WHERE extname = 'amcheck') AS "schema"`;
  if (installed.schema === null) return { indexes: null, findings: [] };
  const indexes = await sql<{ oid: number }[]>`
    SELECT c.oid::bigint AS "oid" FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_am am ON am.oid = c.relam
    WHERE c.relnamespace = current_schema()::regnamespace AND am.amname = 'btree'
      AND i.indisvalid AND i.indisready
    ORDER BY c.oid`;
  const check = `SELECT ${quoteIdent(installed.schema)}.bt_index_check($1::bigint::oid)`;
  for (const index of indexes) await sql.unsafe(check, [index.oid]);
  return { indexes: indexes.length, findings: [] };
}

/**
 * Rows whose single-column foreign key points to no row, for each such
 * constraint of this schema (PostgreSQL enforces them, unless they were
 * added `NOT VALID` or their triggers disabled during a load).
 */
async function foreignKeyViolations(sql: Sql): Promise<Inspection["foreignKeyViolations"]> {
  const keys = await sql<{ table: string; column: string; parent: string; key: string }[]>`
    SELECT child.relname AS "table", ca.attname AS "column",
           parent.relname AS "parent", pa.attname AS "key"
    FROM pg_constraint con
    JOIN pg_class child ON child.oid = con.conrelid
    JOIN pg_class parent ON parent.oid = con.confrelid
    JOIN pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attnum = con.conkey[1]
    JOIN pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = con.confkey[1]
    WHERE con.contype = 'f' AND con.connamespace = current_schema()::regnamespace
      AND cardinality(con.conkey) = 1
    ORDER BY child.relname, ca.attname`;
  const violations: Inspection["foreignKeyViolations"] = [];
  for (const key of keys) {
    const [table, column, parent, parentKey] = [key.table, key.column, key.parent, key.key]
      .map(quoteIdent);
    const rows = await sql.unsafe<{ rowid: number }[]>(
      `SELECT c.id AS "rowid" FROM ${table} c
       WHERE c.${column} IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM ${parent} p WHERE p.${parentKey} = c.${column})
       ORDER BY c.id LIMIT ${FINDINGS}`,
    );
    for (const row of rows) {
      violations.push({ table: key.table, rowid: row.rowid, parent: key.parent });
    }
  }
  return violations;
}

/** The rows the doctor's data checks need, at the current schema. */
async function contents(tx: TxSql, { now, expiringBy }: PgInspectOptions) {
  const expiring = await tx.unsafe<ExpiringLicense[]>(
    `SELECT guid AS "guid", file_expires_at AS "fileExpiresAt", expires_at AS "expiresAt"
     FROM licenses WHERE ${VALID_UNTIL} <= $1 AND seat_of IS NULL
     ORDER BY ${VALID_UNTIL}, id`,
    [expiringBy],
    PREPARED,
  );
  const overdueLeases = await tx<OverdueLease[]>`
    SELECT n.fingerprint AS "fingerprint", COALESCE(m.guid, l.guid) AS "license",
           n.lease_expires_at AS "leaseExpiresAt"
    FROM nodes n JOIN licenses l ON l.node_id = n.id LEFT JOIN licenses m ON m.id = l.seat_of
    WHERE n.deactivated_at IS NULL AND n.lease_expires_at <= ${now}
    ORDER BY n.lease_expires_at, n.id`;
  const [counts] = await tx<Omit<DatabaseContents, "expiring" | "overdueLeases">[]>`
    SELECT (SELECT count(*) FROM licenses WHERE seat_of IS NULL) AS "licenses",
           (SELECT max(created_at) FROM audit_logs) AS "newestAudit",
           (SELECT max(last_heartbeat_at) FROM nodes) AS "newestHeartbeat"`;
  return { ...counts, expiring: [...expiring], overdueLeases: [...overdueLeases] };
}

/** The audit log's rows (the planner's estimate, exact when never analyzed), bytes and oldest. */
async function auditSize(tx: TxSql): Promise<NonNullable<ServerState["audit"]>> {
  const [row] = await tx<{ rows: number; bytes: number; oldest: number | null }[]>`
    SELECT c.reltuples::bigint AS "rows", pg_total_relation_size(c.oid) AS "bytes",
           (SELECT min(created_at) FROM audit_logs) AS "oldest"
    FROM pg_class c WHERE c.oid = 'audit_logs'::regclass`;
  if (row.rows < 0) {
    const [counted] = await tx<{ rows: number }[]>`SELECT count(*) AS "rows" FROM audit_logs`;
    row.rows = counted.rows;
  }
  return row;
}

/** Thrown to end the probe's transaction with a rollback, with what the probe found. */
class Rollback extends Error {
  constructor(readonly refusal: string | null) {
    super("rolled back");
  }
}

/**
 * Why a write would be refused now, or null: the health probe's row
 * (`relay_health`) written as `relay serve` writes it, waiting 2 s at most
 * for its lock, in a transaction that is always rolled back.
 */
async function writeRefusal(sql: Sql, now: number): Promise<string | null> {
  try {
    await sql.begin(async (tx) => {
      await tx`SET LOCAL lock_timeout = '2s'`;
      await tx`SET LOCAL statement_timeout = '5s'`;
      const [probe] = await tx<{ table: string | null }[]>`
        SELECT to_regclass('relay_health')::text AS "table"`;
      if (probe.table === null) {
        // Not Relay's schema: whether the server takes writes at all.
        const [mode] = await tx<{ readOnly: string }[]>`
          SELECT current_setting('transaction_read_only') AS "readOnly"`;
        throw new Rollback(mode.readOnly === "on" ? "the transaction is read-only" : null);
      }
      await tx`INSERT INTO relay_health (id, probes, probed_at) VALUES (1, 1, ${now})
        ON CONFLICT (id) DO UPDATE
        SET probes = relay_health.probes + 1, probed_at = excluded.probed_at`;
      throw new Rollback(null);
    });
  } catch (error) {
    if (error instanceof Rollback) return error.refusal;
    return reason(asDatabaseError(error));
  }
  throw new Error("unreachable: the probe always rolls back");
}

/** An SQL identifier, quoted. */
function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The SQLSTATE of a server's error, if any. */
function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" ? code : undefined;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
