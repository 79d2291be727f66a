/**
 * `relay doctor`'s judgement of a PostgreSQL database (a
 * {@link PostgresInspection}): the checks of `./doctor.ts` that mean the
 * same on a server (foreign keys, schema, clock, licenses, leases), and in
 * place of those about files (modes, owner), the server's own: that it
 * answers, its indexes, whether it takes writes, connections stuck in a
 * transaction or waiting for a lock, connections left, and the size of the
 * audit log. Pure, as `diagnose` is.
 *
 * @module
 */

import {
  type Advice,
  type Check,
  clockCheck,
  count,
  type DiagnoseOptions,
  expiryCheck,
  foreignKeyCheck,
  leaseCheck,
  notRead,
  notReadWhy,
  rfc3339,
  schemaCheck,
} from "./doctor.ts";
import type { Inspection } from "./storage/store.ts";
import type { PostgresInspection, ServerState } from "./storage/postgres/inspect.ts";
import { formatSpan } from "./time.ts";

/** Share of the connections a non-superuser may open above which `connections` warns. */
export const CONNECTIONS_WARN_SHARE = 0.8;

const ADVICE: Advice = {
  restore: "stop the replicas and restore the latest good pg_dump " +
    "(or use the server's point-in-time recovery)",
  backup: "a pg_dump",
};

/** Whether `inspection` is of a PostgreSQL database. */
export function isPostgresInspection(inspection: Inspection): inspection is PostgresInspection {
  return "server" in inspection;
}

/** The checks of a PostgreSQL database, in the order `relay doctor` prints them. */
export function diagnosePostgres(
  inspection: PostgresInspection,
  options: DiagnoseOptions,
): Check[] {
  const { server } = inspection;
  const checks = [
    serverCheck(server),
    integrityCheck(inspection),
    foreignKeyCheck(inspection, ADVICE),
    schemaCheck(inspection, ADVICE),
    writeCheck(inspection.writeRefusal),
    sessionCheck(server),
    connectionCheck(server),
  ];
  const contents = inspection.contents;
  if (contents === null) {
    const why = notReadWhy(inspection);
    for (const name of ["clock", "licenses", "leases", "audit log"]) {
      checks.push(notRead(name, why));
    }
  } else {
    checks.push(
      clockCheck(contents, options.now),
      expiryCheck(contents, options),
      leaseCheck(contents, options.now),
      auditCheck(server.audit),
    );
  }
  return checks;
}

function serverCheck(server: ServerState): Check {
  return {
    name: "server",
    status: "ok",
    message: `PostgreSQL ${server.version} answered, ${
      server.standby ? "a standby" : "the primary"
    }`,
    hint: null,
  };
}

function integrityCheck(inspection: PostgresInspection): Check {
  const name = "integrity";
  const checked = inspection.server.amcheckedIndexes;
  if (inspection.integrity.length === 1 && inspection.integrity[0] === "ok") {
    return {
      name,
      status: "ok",
      message: checked === null
        ? "every index is valid (amcheck is not installed in the database for a deeper check)"
        : `every index is valid, amcheck found no damage in ${checked} ${
          checked === 1 ? "index" : "indexes"
        }`,
      hint: null,
    };
  }
  const findings = inspection.integrity;
  return {
    name,
    status: "fail",
    message: `${findings.slice(0, 3).join("; ")}${findings.length > 3 ? "; …" : ""}`,
    hint: "rebuild it: REINDEX INDEX CONCURRENTLY <name> (damage amcheck finds may also " +
      "mean a failing disk: check the server's logs)",
  };
}

function writeCheck(refusal: string | null): Check {
  const name = "writes";
  if (refusal === null) {
    return {
      name,
      status: "ok",
      message: "the database accepts writes (probed in a transaction rolled back)",
      hint: null,
    };
  }
  return {
    name,
    status: "fail",
    message: `the database does not accept writes: ${refusal}`,
    hint: /read-only/i.test(refusal)
      ? "point --database at the primary (a standby, or default_transaction_read_only is on)"
      : /lock|timeout/i.test(refusal)
      ? "a connection holds a lock too long: find it in pg_stat_activity (see sessions)"
      : /permission|privilege/i.test(refusal)
      ? "run relay doctor as Relay's own role, the owner of its tables"
      : "read the server's log",
  };
}

function sessionCheck(server: ServerState): Check {
  const name = "sessions";
  const stuck = server.stuck;
  if (stuck.length === 0) {
    return {
      name,
      status: "ok",
      message: "no connection sits in a transaction or waits for a lock",
      hint: null,
    };
  }
  const described = stuck.slice(0, 3).map((session) => {
    const who = [session.application || "no application name", session.client]
      .filter(Boolean).join(", ");
    const what = session.kind === "waiting"
      ? `waiting for a lock for ${formatSpan(session.seconds)}` +
        (session.blockedBy.length > 0 ? ` held by pid ${session.blockedBy.join(", ")}` : "")
      : `idle in a transaction for ${formatSpan(session.seconds)}`;
    return `pid ${session.pid} (${who}) ${what}`;
  });
  return {
    name,
    status: "warn",
    message: `${count(stuck.length, "connection")} stuck: ${described.join("; ")}` +
      (stuck.length > 3 ? "; …" : ""),
    hint: "a transaction left open holds its locks: end it with SELECT pg_terminate_backend(pid) " +
      "(idle_in_transaction_session_timeout ends such ones by itself)",
  };
}

function connectionCheck(server: ServerState): Check {
  const name = "connections";
  const { used, max, reservedForSuperusers } = server.connections;
  const usable = Math.max(max - reservedForSuperusers, 0);
  const message =
    `${used} of ${max} connections in use (${reservedForSuperusers} kept for superusers)`;
  if (used < usable * CONNECTIONS_WARN_SHARE) return { name, status: "ok", message, hint: null };
  return {
    name,
    status: "warn",
    message: `${message}: new ones will soon be refused`,
    hint: "raise max_connections, or put a pooler (PgBouncer) in front: " +
      "each relay serve opens up to 10",
  };
}

function auditCheck(audit: ServerState["audit"]): Check {
  const name = "audit log";
  if (audit === null) return notRead(name, "the audit log's size cannot be read");
  const since = audit.oldest === null ? "empty" : `since ${rfc3339(audit.oldest)}`;
  return {
    name,
    status: "ok",
    message: `about ${count(audit.rows, "record")}, ${megabytes(audit.bytes)} with its indexes, ` +
      since,
    hint: null,
  };
}

/** `12.3 MB`, `96 kB`. */
function megabytes(bytes: number): string {
  if (bytes < 1_000_000) return `${Math.ceil(bytes / 1000)} kB`;
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}
