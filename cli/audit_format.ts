/**
 * How `relay audit` prints audit records: a table for people (boxed on a
 * terminal, the plain layout otherwise), JSON, or CSV; and, for `--follow`,
 * the same formats as a stream that grows as records arrive.
 *
 * @module
 */

import type { AuditRecord } from "../lib/audit_log.ts";
import { formatTime, renderBoxTable, renderPlainTable } from "./output.ts";
import { holderJson, holderLabel } from "../lib/holders.ts";

/** The output formats of `relay audit`. */
export type AuditFormat = "box" | "plain" | "json" | "csv";

/** Column titles of the table: what an operator reads, no raw ids. */
export const AUDIT_COLUMNS = ["time", "event", "license", "node", "pool"];

/** Columns of `--csv`, and the keys of `--json`. */
export const AUDIT_FIELDS = [
  "id",
  "time",
  "event",
  "entity",
  "entity_id",
  "license",
  "node",
  "pool",
  "user",
];

/**
 * The narrowest column of a streamed table (`--follow`): an RFC 3339 time,
 * the longest event name, a Keygen license id. Wider cells push the rest.
 */
const STREAM_MIN_WIDTHS = [20, 25, 36, 12, 8];

/** Writes records in one format: the ones there are, then (with `--follow`) new ones. */
export interface AuditWriter {
  /** The text for the records already in the log (with `--follow`: the stream's start). */
  start(records: readonly AuditRecord[]): string;
  /** The text for records that arrived since (`--follow` only). */
  more(records: readonly AuditRecord[]): string;
}

/** A writer of `format`; `follow` makes it a stream (JSON lines, a table without a box). */
export function auditWriter(format: AuditFormat, options: { follow: boolean }): AuditWriter {
  const lines = (rows: readonly AuditRecord[], line: (record: AuditRecord) => string) =>
    rows.map(line).join("");
  switch (format) {
    case "json": {
      const line = (record: AuditRecord) => JSON.stringify(auditJson(record)) + "\n";
      return {
        start: (records) =>
          options.follow ? lines(records, line) : JSON.stringify(records.map(auditJson)) + "\n",
        more: (records) => lines(records, line),
      };
    }
    case "csv": {
      const line = (record: AuditRecord) => csvLine(AUDIT_FIELDS.map((f) => auditJson(record)[f]));
      return {
        start: (records) => csvLine(AUDIT_FIELDS) + lines(records, line),
        more: (records) => lines(records, line),
      };
    }
    default: {
      if (options.follow) return streamedTable();
      const render = format === "box" ? renderBoxTable : renderPlainTable;
      return {
        start: (records) =>
          records.length === 0
            ? "no audit events\n"
            : render({ columns: AUDIT_COLUMNS, rows: records.map(auditCells) }),
        more: () => "",
      };
    }
  }
}

/**
 * The plain table as a stream: column widths are fixed by the first
 * records (at least {@link STREAM_MIN_WIDTHS}), since printed lines cannot
 * be widened later.
 */
function streamedTable(): AuditWriter {
  let widths: number[] = [];
  const line = (cells: string[]) =>
    "| " + cells.map((cell, i) => cell.padEnd(widths[i])).join(" | ") + " |\n";
  return {
    start(records) {
      const rows = records.map(auditCells);
      widths = AUDIT_COLUMNS.map((title, i) =>
        Math.max(STREAM_MIN_WIDTHS[i], title.length, ...rows.map((row) => row[i].length))
      );
      const rule = "+" + widths.map((width) => "-".repeat(width + 2)).join("+") + "+\n";
      return line(AUDIT_COLUMNS) + rule + rows.map(line).join("");
    },
    more: (records) => records.map((record) => line(auditCells(record))).join(""),
  };
}

/**
 * One record as table cells: time, event, license id (`#<row id>` once the
 * license is deleted), node fingerprint, pool name; `-` where none applies.
 */
export function auditCells(record: AuditRecord): string[] {
  const deleted = record.entityName === "license" ? `#${record.entityId}` : "-";
  return [
    formatTime(record.createdAt),
    record.eventName,
    record.licenseGuid ?? deleted,
    record.nodeFingerprint === null ? "-" : holderLabel(record.nodeFingerprint),
    record.poolName ?? "-",
  ];
}

/** One record as a JSON object with the keys of {@link AUDIT_FIELDS}. */
export function auditJson(record: AuditRecord): Record<string, string | number | null> {
  return {
    id: record.id,
    time: formatTime(record.createdAt),
    event: record.eventName,
    entity: record.entityName,
    entity_id: record.entityId,
    license: record.licenseGuid,
    // A user's event: node null, the email in `user` (lib/holders.ts).
    ...holderJson(record.nodeFingerprint),
    pool: record.poolName,
    user: null,
    ...userOf(record.nodeFingerprint),
  };
}

/**
 * One CSV line as RFC 4180 quotes it: a field with a comma, quote, CR or LF
 * is quoted, its quotes doubled; null is an empty field. Lines end with LF,
 * as Unix tools expect (CSV readers take either).
 */
export function csvLine(fields: readonly (string | number | null | undefined)[]): string {
  return fields.map((field) => {
    const text = field === null || field === undefined ? "" : String(field);
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  }).join(",") + "\n";
}

/** `{ user: email }` for a user's key; nothing for a node or none. */
function userOf(key: string | null): { user?: string } {
  const named = key === null ? {} : holderJson(key);
  return "user" in named ? { user: named.user! } : {};
}
