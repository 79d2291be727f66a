/**
 * Rendering of command output: tables (boxed for people, the reference
 * Relay's `--plain` layout for scripts), JSON, and the progress bar.
 *
 * @module
 */

import Table from "cli-table3";
import cliProgress from "cli-progress";
import process from "node:process";
import type { LicenseInfo } from "../lib/storage/store.ts";
import { fileState } from "../lib/expiry.ts";
import { leaseState } from "../lib/licenses.ts";
import { holderJson, holderLabel } from "../lib/holders.ts";

/** A table: column titles, then rows of cells. */
export interface TableData {
  columns: string[];
  rows: string[][];
}

/** A unix time in seconds as RFC 3339 UTC (`2025-12-05T10:00:00Z`), or `-`. */
export function formatTime(seconds: number | null): string {
  if (seconds === null) return "-";
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A unix time in seconds as RFC 3339 UTC, or null. */
function isoTime(seconds: number | null): string | null {
  return seconds === null ? null : formatTime(seconds);
}

/**
 * The reference Relay's plain table: `| a | b |` rows under a `+---+` rule,
 * each column as wide as its widest cell. Scripts written against it keep
 * working, since Relay's extra columns come after the reference's six.
 */
export function renderPlainTable({ columns, rows }: TableData): string {
  const widths = columns.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => row[i].length))
  );
  const line = (cells: string[]) =>
    "| " + cells.map((cell, i) => cell.padEnd(widths[i])).join(" | ") + " |\n";
  const rule = "+" + widths.map((width) => "-".repeat(width + 2)).join("+") + "+\n";
  return line(columns) + rule + rows.map(line).join("");
}

/** A boxed table for a terminal. */
export function renderBoxTable({ columns, rows }: TableData): string {
  const table = new Table({ head: columns, style: { head: [], border: [] } });
  table.push(...rows);
  return table.toString() + "\n";
}

/**
 * The moment a license row shows: `now` (unix seconds) for its lease state,
 * and the window (seconds) within which a file counts as `expiring`.
 */
export interface RowTime {
  now: number;
  within: number;
}

/** Column titles of `ls` and `stat`: the reference's six, then Relay's. */
export const LICENSE_COLUMNS = [
  "id",
  "pool",
  "claims",
  "node_id",
  "last_claimed_at",
  "last_released_at",
  "status",
  "node",
  "file_expires_at",
  "file_state",
];

/**
 * One license as a table row matching {@link LICENSE_COLUMNS}: its lease and
 * the validity of its file as at `at`.
 */
export function licenseRow(license: LicenseInfo, at: RowTime): string[] {
  const { now } = at;
  // A multi-seat license has several holders: `relay leases` lists them.
  const multi = license.seats > 1;
  return [
    license.guid,
    license.poolName ?? "-",
    String(license.claims),
    multi || license.nodeId === null ? "-" : String(license.nodeId),
    formatTime(license.lastClaimedAt),
    formatTime(license.lastReleasedAt),
    licenseStatus(license, now),
    multi || license.nodeFingerprint === null ? "-" : holderLabel(license.nodeFingerprint),
    formatTime(license.fileExpiresAt),
    fileState(license, at),
  ];
}

/** The `seats` column that `ls` and `stat` add when a license has more than one seat. */
export const SEATS_COLUMN = "seats";

/** `used/total`: a license's seats leased (expired leases not yet reaped included) and its seats. */
export function seatsLabel(license: Pick<LicenseInfo, "seats" | "seatsUsed">): string {
  return `${license.seatsUsed}/${license.seats}`;
}

/**
 * The columns and rows of licenses for `ls` and `stat`: {@link LICENSE_COLUMNS},
 * and {@link SEATS_COLUMN} after them only when one of them has several
 * seats (so the output of single-seat licenses stays the reference's).
 */
export function licenseTable(licenses: readonly LicenseInfo[], at: RowTime): TableData {
  const seats = licenses.some((license) => license.seats > 1);
  return {
    columns: seats ? [...LICENSE_COLUMNS, SEATS_COLUMN] : LICENSE_COLUMNS,
    rows: licenses.map((license) => {
      const row = licenseRow(license, at);
      return seats ? [...row, seatsLabel(license)] : row;
    }),
  };
}

/**
 * `leased` or `free` (`expired`: a lease past its expiry, not reaped); for a
 * multi-seat license `leased` once every seat is, else `free`.
 */
function licenseStatus(license: LicenseInfo, now: number): string {
  if (license.seats <= 1) return leaseState(license, now);
  return license.seatsUsed >= license.seats ? "leased" : "free";
}

/**
 * One license as a JSON object for `--json` (snake_case, RFC 3339 times), its
 * lease and the validity of its file as at `at`.
 */
export function licenseJson(license: LicenseInfo, at: RowTime): Record<string, unknown> {
  const { now } = at;
  // A multi-seat license has several holders: `relay leases` lists them.
  const multi = license.seats > 1;
  return {
    id: license.guid,
    pool: license.poolName,
    status: licenseStatus(license, now),
    claims: license.claims,
    node_id: multi ? null : license.nodeId,
    ...holderJson(multi ? null : license.nodeFingerprint, "node_fingerprint"),
    node_last_heartbeat_at: isoTime(multi ? null : license.nodeLastHeartbeatAt),
    lease_expires_at: isoTime(multi ? null : license.leaseExpiresAt),
    last_claimed_at: isoTime(license.lastClaimedAt),
    last_released_at: isoTime(license.lastReleasedAt),
    added_at: isoTime(license.createdAt),
    file_issued_at: isoTime(license.fileIssuedAt),
    file_expires_at: isoTime(license.fileExpiresAt),
    expires_at: isoTime(license.expiresAt),
    file_state: fileState(license, at),
    seats: license.seats,
    seats_used: license.seatsUsed,
  };
}

/** A progress bar on stderr; `tick` with the count done, `stop` when finished. */
export interface Progress {
  tick(done: number): void;
  stop(): void;
}

/** A progress bar of `total` steps drawn on a terminal's stderr. */
export function startProgress(label: string, total: number): Progress {
  const bar = new cliProgress.SingleBar({
    format: `${label} [{bar}] {value}/{total} ({percentage}%)`,
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: true,
  }, cliProgress.Presets.shades_classic);
  bar.start(total, 0);
  return { tick: (done) => bar.update(done), stop: () => bar.stop() };
}
