/**
 * `relay doctor`'s judgement: from what was read of a database (an
 * {@link Inspection}) and the clock, one {@link Check} per concern, each `ok`,
 * `warn` or `fail`, with a hint of what to do. Pure: the inspection, `now`
 * and the expiry window come in as parameters.
 *
 * @module
 */

import { fileState } from "./expiry.ts";
import type { DatabaseContents, DatabaseFile, Inspection } from "./storage/store.ts";
import { formatSpan } from "./time.ts";
import { holderLabel } from "./holders.ts";

/** How a check came out: `warn` and `fail` both need action; `fail` is the more urgent. */
export type CheckStatus = "ok" | "warn" | "fail";

/** One line of the doctor's report. */
export interface Check {
  /** What was checked: `integrity`, `foreign keys`, `file modes`, … */
  name: string;
  status: CheckStatus;
  /** What was found. */
  message: string;
  /** What to do about it; null when nothing needs doing. */
  hint: string | null;
}

/** Options of {@link diagnose}. */
export interface DiagnoseOptions {
  /** Unix seconds: the clock of this run. */
  now: number;
  /** Seconds ahead in which an expiring license is reported. */
  within: number;
  /** The window as the user wrote it (`7d`), for messages. */
  withinText: string;
}

/**
 * A lease past its stored expiry for longer than this (seconds) means no
 * reaper is running: a running one ends it within `--cull-interval` (15 s by
 * default), and a claim that needs its license takes it at once.
 */
export const OVERDUE_LEASE_GRACE_SECONDS = 60;

/** How many license ids or fingerprints a message names before `…`. */
const NAMED = 3;

/** The checks of `inspection`, in the order `relay doctor` prints them. */
export function diagnose(inspection: Inspection, options: DiagnoseOptions): Check[] {
  const database = inspection.files.find((file) => file.role === "database")?.path ?? "database";
  const checks = [
    integrityCheck(inspection),
    foreignKeyCheck(inspection),
    fileModeCheck(inspection.files),
    ownerCheck(inspection.files),
    schemaCheck(inspection),
    writeCheck(inspection, database),
  ];
  const contents = inspection.contents;
  if (contents === null) {
    const why = notReadWhy(inspection);
    for (const name of ["clock", "licenses", "leases"]) {
      checks.push({ name, status: "warn", message: `not checked: ${why}`, hint: null });
    }
  } else {
    checks.push(
      clockCheck(contents, options.now),
      expiryCheck(contents, options),
      leaseCheck(contents, options.now),
    );
  }
  return checks;
}

/** Whether any check needs action (`relay doctor` then exits 1). */
export function needsAction(checks: readonly Check[]): boolean {
  return checks.some((check) => check.status !== "ok");
}

/** What to do about damage, and before a migration, on an engine. */
export interface Advice {
  /** The hint for damage: how to restore. */
  restore: string;
  /** What to make before the schema is migrated (`a relay backup`). */
  backup: string;
}

/** {@link Advice} for a SQLite file. */
const SQLITE_ADVICE: Advice = {
  restore: "stop relay serve and restore the latest good backup (see relay backup)",
  backup: "a relay backup",
};
const RESTORE = SQLITE_ADVICE.restore;

function integrityCheck(inspection: Inspection): Check {
  const name = "integrity";
  if (inspection.unreadable !== null) {
    return {
      name,
      status: "fail",
      message: `the database cannot be read: ${inspection.unreadable}`,
      hint: RESTORE,
    };
  }
  if (inspection.integrity.length === 1 && inspection.integrity[0] === "ok") {
    return { name, status: "ok", message: "integrity_check found no damage", hint: null };
  }
  return {
    name,
    status: "fail",
    message: `integrity_check found damage: ${inspection.integrity.slice(0, NAMED).join("; ")}${
      inspection.integrity.length > NAMED ? "; …" : ""
    }`,
    hint: RESTORE,
  };
}

/** `foreign keys`: rows that point to rows that do not exist. */
export function foreignKeyCheck(inspection: Inspection, advice: Advice = SQLITE_ADVICE): Check {
  const name = "foreign keys";
  if (inspection.unreadable !== null) return notRead(name, "the database cannot be read");
  if (inspection.foreignKeyError !== null) {
    return {
      name,
      status: "fail",
      message: `foreign_key_check failed: ${inspection.foreignKeyError}`,
      hint: advice.restore,
    };
  }
  const violations = inspection.foreignKeyViolations;
  if (violations.length === 0) {
    return { name, status: "ok", message: "every reference points to an existing row", hint: null };
  }
  const named = violations.slice(0, NAMED)
    .map((v) => `${v.table} row ${v.rowid ?? "?"} -> ${v.parent}`).join(", ");
  return {
    name,
    status: "fail",
    message: `${count(violations.length, "row")} ${
      violations.length === 1 ? "points" : "point"
    } to rows that do not exist (${named}${violations.length > NAMED ? ", …" : ""})`,
    hint: advice.restore,
  };
}

function fileModeCheck(files: readonly DatabaseFile[]): Check {
  const name = "file modes";
  const open = files.filter((file) => file.mode !== null && (file.mode & 0o077) !== 0);
  if (open.length === 0) {
    const modes = files.map((file) => `${file.path} ${octal(file.mode)}`).join(", ");
    return { name, status: "ok", message: `readable by the owner only (${modes})`, hint: null };
  }
  const modes = open.map((file) => `${file.path} is ${octal(file.mode)}`).join(", ");
  return {
    name,
    status: "warn",
    message: `${modes}: readable by group or others, and it holds the license keys`,
    hint: `chmod 600 ${open.map((file) => file.path).join(" ")}`,
  };
}

function ownerCheck(files: readonly DatabaseFile[]): Check {
  const name = "owner";
  const database = files.find((file) => file.role === "database");
  if (database === undefined || database.uid === null) {
    return { name, status: "ok", message: "no file owners on this system", hint: null };
  }
  const others = files.filter((file) => file.uid !== null && file.uid !== database.uid);
  if (others.length === 0) {
    return { name, status: "ok", message: `owned by uid ${database.uid}`, hint: null };
  }
  const owners = others.map((file) => `${file.path} by uid ${file.uid}`).join(", ");
  return {
    name,
    status: "warn",
    message: `the database is owned by uid ${database.uid}, but ${owners}: ` +
      `a server running as uid ${database.uid} may fail to open it`,
    hint: `chown ${database.uid} ${others.map((file) => file.path).join(" ")}, ` +
      "and run relay commands as the service's user",
  };
}

/** `schema`: this Relay's latest, older (pending migrations), newer or not Relay's. */
export function schemaCheck(inspection: Inspection, advice: Advice = SQLITE_ADVICE): Check {
  const name = "schema";
  const schema = inspection.schema;
  if (schema === null) return notRead(name, "the database cannot be read");
  switch (schema.kind) {
    case "current":
      return {
        name,
        status: "ok",
        message: `version ${schema.version}, this Relay's latest`,
        hint: null,
      };
    case "behind":
      return {
        name,
        status: "warn",
        message: schema.version === 0
          ? "no Relay tables yet"
          : `version ${schema.version} of ${schema.latest}: ${
            count(schema.latest - schema.version, "migration")
          } pending`,
        hint: `the next relay serve or relay add applies them (make ${advice.backup} first)`,
      };
    case "reference":
      return {
        name,
        status: "warn",
        message: "written by Keygen Relay and not yet migrated",
        hint: "the next relay serve or relay add migrates it, keeping every row " +
          "(make a relay backup first)",
      };
    case "newer":
      return { name, status: "fail", message: schema.problem, hint: null };
    case "unusable":
      return { name, status: "fail", message: schema.problem, hint: null };
  }
}

function writeCheck(inspection: Inspection, database: string): Check {
  const name = "writes";
  if (inspection.unreadable !== null) return notRead(name, "the database cannot be read");
  const refusal = inspection.writeRefusal;
  if (refusal === null) {
    return { name, status: "ok", message: "the database accepts writes", hint: null };
  }
  return {
    name,
    status: "fail",
    message: `the database does not accept writes: ${refusal}`,
    hint: /locked|busy/i.test(refusal)
      ? `another process holds the write lock too long: find it (fuser ${database})`
      : "check the permissions and owner of the file and its folder, and that the disk " +
        "is not full or mounted read-only",
  };
}

/** `clock`: whether this machine's clock is behind a stored record (it went backwards). */
export function clockCheck(contents: DatabaseContents, now: number): Check {
  const name = "clock";
  const records = [
    { what: "the newest audit record", at: contents.newestAudit },
    { what: "a node's last heartbeat", at: contents.newestHeartbeat },
  ].filter((record): record is { what: string; at: number } => record.at !== null);
  const ahead = records.filter((record) => record.at > now)
    .sort((a, b) => b.at - a.at)[0];
  if (ahead === undefined) {
    return {
      name,
      status: "ok",
      message: `the clock (${rfc3339(now)}) is not behind any record`,
      hint: null,
    };
  }
  return {
    name,
    status: "fail",
    message: `the clock (${rfc3339(now)}) is ${formatSpan(ahead.at - now)} behind ${ahead.what} ` +
      `(${rfc3339(ahead.at)}): it went backwards`,
    hint: "set the system clock right (NTP) before serving: leases and expiries are timed by it",
  };
}

/** `licenses`: licenses expired or expiring within the window. */
export function expiryCheck(contents: DatabaseContents, options: DiagnoseOptions): Check {
  const name = "licenses";
  const { now, within, withinText } = options;
  const expired: string[] = [];
  const expiring: string[] = [];
  for (const license of contents.expiring) {
    const state = fileState(license, { now, within });
    if (state === "expired") expired.push(license.guid);
    else if (state === "expiring") expiring.push(license.guid);
  }
  if (expired.length === 0 && expiring.length === 0) {
    return {
      name,
      status: "ok",
      message: `${count(contents.licenses, "license")}, none expires within ${withinText}`,
      hint: null,
    };
  }
  const parts = [];
  if (expired.length > 0) {
    parts.push(`${count(expired.length, "license")} expired (${named(expired)})`);
  }
  if (expiring.length > 0) {
    parts.push(
      `${count(expiring.length, "license")} ${
        expiring.length === 1 ? "expires" : "expire"
      } within ${withinText} (${named(expiring)})`,
    );
  }
  return {
    name,
    status: "warn",
    message: parts.join(", "),
    hint: "renew them: relay del the old file, relay add the new one " +
      `(relay ls --expiring ${withinText} lists them)`,
  };
}

/** `leases`: leases long past their expiry and still held (no reaper runs). */
export function leaseCheck(contents: DatabaseContents, now: number): Check {
  const name = "leases";
  const overdue = contents.overdueLeases.filter((lease) =>
    lease.leaseExpiresAt <= now - OVERDUE_LEASE_GRACE_SECONDS
  );
  if (overdue.length === 0) {
    return { name, status: "ok", message: "no lease is overdue for reaping", hint: null };
  }
  const oldest = overdue[0];
  return {
    name,
    status: "warn",
    message: `${count(overdue.length, "lease")} expired over a minute ago and still held ` +
      `(${named(overdue.map((lease) => holderLabel(lease.fingerprint)))}; the oldest expired at ${
        rfc3339(oldest.leaseExpiresAt)
      })`,
    hint: "run relay serve: its reaper releases them (if it runs, it is stuck: restart it)",
  };
}

/** A check that could not run, as a `warn` saying why. */
export function notRead(name: string, why: string): Check {
  return { name, status: "warn", message: `not checked: ${why}`, hint: null };
}

/** Why the data checks could not run. */
export function notReadWhy(inspection: Inspection): string {
  if (inspection.unreadable !== null) return "the database cannot be read";
  if (inspection.contentsError !== null) return `reading it failed: ${inspection.contentsError}`;
  return "the schema is not this Relay's latest";
}

/** `3 licenses`, `1 license`. */
export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** The first few of `items`, then `…`. */
export function named(items: readonly string[]): string {
  return items.slice(0, NAMED).join(", ") + (items.length > NAMED ? ", …" : "");
}

/** `0600`. */
function octal(mode: number | null): string {
  return mode === null ? "?" : `0${mode.toString(8).padStart(3, "0")}`;
}

/** Unix seconds as RFC 3339 UTC, whole seconds. */
export function rfc3339(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(".000Z", "Z");
}
