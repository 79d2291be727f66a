/**
 * The status page's HTML: pool utilisation, a chart of leased seats over the
 * last 24 hours (inline SVG), current leases, denials and recent audit
 * records. Every value from the database is escaped; the page holds no
 * script and refreshes itself with a meta refresh.
 *
 * @module
 */

import type { AuditRecord, LeaseDetail, PoolSeats, SeatPoint } from "../lib/status.ts";
import { formatSpan } from "../lib/time.ts";
import { holderLabel } from "../lib/holders.ts";

/** Everything the page shows. */
export interface StatusData {
  /** Unix seconds. */
  now: number;
  /** Whether this server writes the audit log (the chart and lists need it). */
  auditEnabled: boolean;
  pools: PoolSeats[];
  /** The current leases, at most {@link StatusData.leaseLimit} of them. */
  leases: LeaseDetail[];
  leaseLimit: number;
  history: SeatPoint[];
  events: AuditRecord[];
  denials: AuditRecord[];
  /** Denials this server answered since it started, by pool label; null: not counted. */
  denialCounts: { pool: string; count: number }[] | null;
}

/** Seconds between the page's refreshes. */
export const REFRESH_SECONDS = 15;

/** The page's only style sheet; the Content-Security-Policy allows it by hash. */
export const PAGE_STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1b1f24; background: #fff; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
p.meta, .none { color: #57606a; }
table { border-collapse: collapse; min-width: 24rem; }
th, td { text-align: left; padding: .25rem .75rem .25rem 0; border-bottom: 1px solid #d0d7de; }
td.num, th.num { text-align: right; }
code { font: 12px ui-monospace, monospace; }
svg { display: block; max-width: 100%; }
svg.bar { display: inline-block; vertical-align: middle; }
`;

/** Text made safe for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

/** `2026-12-02 04:30:12Z`. */
function time(unix: number): string {
  return new Date(unix * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function poolName(pool: string | null): string {
  return pool === null ? '<span class="none">(no pool)</span>' : escapeHtml(pool);
}

/** The whole page. */
export function renderStatusPage(data: StatusData): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${REFRESH_SECONDS}">
<meta name="referrer" content="no-referrer">
<title>Relay status</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
<h1>Relay status</h1>
<p class="meta">As of <time>${time(data.now)}</time>; refreshes every ${REFRESH_SECONDS}s.${
    data.auditEnabled ? "" : " This server writes no audit log: the chart and lists may be empty."
  }</p>
${poolsSection(data.pools)}
${chartSection(data.history, data.now)}
${leasesSection(data)}
${denialsSection(data)}
${eventsSection(data.events)}
</body>
</html>
`;
}

function poolsSection(pools: PoolSeats[]): string {
  const rows = pools.map((pool) => {
    const total = pool.leased + pool.free + pool.expired;
    const used = total === 0 ? 0 : pool.leased / total;
    return `<tr data-pool="${escapeHtml(pool.pool ?? "")}">
<td>${poolName(pool.pool)}</td><td class="num leased">${pool.leased}</td>
<td class="num free">${pool.free}</td><td class="num expired">${pool.expired}</td>
<td class="num total">${total}</td>
<td>${bar(used)} ${Math.round(used * 100)}%</td></tr>`;
  });
  return `<h2>Pools</h2>
<table id="pools"><thead><tr><th>Pool</th><th class="num">Leased</th><th class="num">Free</th>
<th class="num">Expired</th><th class="num">Total</th><th>Utilisation</th></tr></thead>
<tbody>${rows.join("\n") || '<tr><td class="none" colspan="6">No licenses</td></tr>'}</tbody>
</table>`;
}

/** A 120×10 bar filled to `fraction`. */
function bar(fraction: number): string {
  const width = Math.round(Math.min(1, Math.max(0, fraction)) * 120);
  return `<svg class="bar" width="120" height="10" role="img" aria-label="${
    Math.round(fraction * 100)
  }%">` +
    `<rect width="120" height="10" fill="#eaeef2"/><rect width="${width}" height="10" ` +
    `fill="#2da44e"/></svg>`;
}

/** A step chart of leased seats, the window's start at the left and now at the right. */
function chartSection(history: SeatPoint[], now: number): string {
  const width = 720, height = 160, left = 40, bottom = 20, top = 10;
  const since = history[0]?.at ?? now;
  const windowSeconds = Math.max(1, now - since);
  const max = Math.max(1, ...history.map((point) => point.leased));
  const x = (at: number) => (left + ((at - since) / windowSeconds) * (width - left)).toFixed(1);
  const y = (leased: number) => (top + (1 - leased / max) * (height - top - bottom)).toFixed(1);
  let path = "";
  for (const [i, point] of history.entries()) {
    path += i === 0 ? `M${x(point.at)} ${y(point.leased)}` : ` H${x(point.at)} V${y(point.leased)}`;
  }
  path += ` H${x(now)}`;
  const ticks = [0, 6, 12, 18, 24].map((hoursAgo) => {
    const at = now - hoursAgo * 3600;
    if (at < since) return "";
    const anchor = hoursAgo === 0 ? "end" : "middle";
    return `<text x="${x(at)}" y="${height - 4}" font-size="11" text-anchor="${anchor}" ` +
      `fill="#57606a">${hoursAgo === 0 ? "now" : `-${hoursAgo}h`}</text>`;
  }).join("");
  const current = history.at(-1)?.leased ?? 0;
  return `<h2>Leased seats, last 24 hours</h2>
<svg id="seat-chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img"
 aria-label="Leased seats over the last 24 hours, ${current} now">
<title>Leased seats over the last 24 hours (${current} now, at most ${max})</title>
<line x1="${left}" y1="${y(0)}" x2="${width}" y2="${y(0)}" stroke="#d0d7de"/>
<line x1="${left}" y1="${y(max)}" x2="${width}" y2="${y(max)}" stroke="#eaeef2"/>
<text x="${left - 6}" y="${y(max)}" font-size="11" text-anchor="end" dominant-baseline="middle"
 fill="#57606a">${max}</text>
<text x="${left - 6}" y="${y(0)}" font-size="11" text-anchor="end" dominant-baseline="middle"
 fill="#57606a">0</text>
<path d="${path}" fill="none" stroke="#0969da" stroke-width="2"/>
${ticks}
</svg>`;
}

function leasesSection({ leases, leaseLimit, now }: StatusData): string {
  const rows = leases.map((lease) => {
    const expires = lease.leaseExpiresAt === null
      ? "never"
      : lease.leaseExpiresAt > now
      ? `in ${formatSpan(lease.leaseExpiresAt - now, " ")}`
      : `expired ${formatSpan(now - lease.leaseExpiresAt, " ")} ago`;
    return `<tr><td><code class="fingerprint">${
      escapeHtml(holderLabel(lease.nodeFingerprint))
    }</code></td>
<td><code>${escapeHtml(lease.licenseGuid)}</code></td><td>${poolName(lease.poolName)}</td>
<td>${lease.claimedAt === null ? "" : time(lease.claimedAt)}</td><td>${expires}</td></tr>`;
  });
  const count = leases.length < leaseLimit ? `${leases.length}` : `the first ${leaseLimit}`;
  return `<h2>Current leases (${count})</h2>
<table id="leases"><thead><tr><th>Node or user</th><th>License</th><th>Pool</th>
<th>Leased at</th><th>Expires</th></tr></thead>
<tbody>${rows.join("\n") || '<tr><td class="none" colspan="5">No leases</td></tr>'}</tbody>
</table>`;
}

function denialsSection(data: StatusData): string {
  const counts = data.denialCounts === null
    ? ""
    : `<p id="denial-counts">Since this server started: ${
      data.denialCounts.filter(({ count }) => count > 0).map(({ pool, count }) =>
        `${pool === "" ? "(no pool)" : escapeHtml(pool)}: ${count}`
      ).join(", ") || "none"
    }.</p>`;
  return `<h2>Denials (no license free)</h2>
${counts}
${recordsTable("denials", data.denials, "No denials recorded")}`;
}

function eventsSection(events: AuditRecord[]): string {
  return `<h2>Recent events</h2>
${recordsTable("events", events, "No events recorded")}`;
}

function recordsTable(id: string, records: AuditRecord[], empty: string): string {
  const rows = records.map((record) => {
    const subject = record.nodeFingerprint === null
      ? record.licenseGuid
      : holderLabel(record.nodeFingerprint);
    return `<tr><td>${time(record.createdAt)}</td><td>${escapeHtml(record.eventName)}</td>
<td>${poolName(record.poolName)}</td>
<td>${subject === null ? "" : `<code>${escapeHtml(subject)}</code>`}</td></tr>`;
  });
  return `<table id="${id}"><thead><tr><th>Time</th><th>Event</th><th>Pool</th>
<th>Node, user or license</th></tr></thead>
<tbody>${rows.join("\n") || `<tr><td class="none" colspan="4">${empty}</td></tr>`}</tbody>
</table>`;
}
