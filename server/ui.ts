/**
 * The read-only status page, `GET /ui` (`relay serve --ui`): gathers what it
 * shows from the database (`lib/status.ts`) and this server's counters, and
 * renders it (`./ui_page.ts`) as one HTML document with no external assets,
 * no script, and a Content-Security-Policy that allows nothing else.
 *
 * @module
 */

import { EventType } from "../lib/audit.ts";
import { auditRecords, currentLeases, poolSeats, seatHistory } from "../lib/status.ts";
import type { Store } from "../lib/storage/store.ts";
import type { RelayMetrics } from "./metrics.ts";
import { PAGE_STYLE, renderStatusPage, type StatusData } from "./ui_page.ts";

/** Leases listed at most. */
export const MAX_LEASES_SHOWN = 500;

/** Audit records listed at most, per list (recent events, denials). */
export const MAX_RECORDS_SHOWN = 25;

/** The chart's span and resolution, in seconds. */
const HISTORY_WINDOW = 24 * 3600;
const HISTORY_BUCKET = 300;

/** What the page is built from. */
export interface StatusPageDeps {
  store: Store;
  /** Unix seconds. */
  now: number;
  /** This server's counters (denials since start); none: not shown. */
  metrics?: RelayMetrics;
}

/** The page and the headers it must be served with. */
export interface StatusPage {
  html: string;
  headers: Record<string, string>;
}

let policy: Promise<string> | undefined;

/**
 * The page's Content-Security-Policy: nothing may load or run but its own
 * inline style, named by hash; images only from `data:` (none today).
 */
function contentSecurityPolicy(): Promise<string> {
  policy ??= crypto.subtle.digest("SHA-256", new TextEncoder().encode(PAGE_STYLE)).then(
    (digest) => {
      const hash = btoa(String.fromCharCode(...new Uint8Array(digest)));
      return [
        "default-src 'none'",
        `style-src 'sha256-${hash}'`,
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
      ].join("; ");
    },
  );
  return policy;
}

/**
 * Reads the status and renders the page.
 *
 * @throws {DatabaseError} the database failed.
 */
export async function statusPage(deps: StatusPageDeps): Promise<StatusPage> {
  const { store, now } = deps;
  const data: StatusData = {
    now,
    auditEnabled: store.auditEnabled,
    pools: await poolSeats(store, now),
    leases: await currentLeases(store, { limit: MAX_LEASES_SHOWN }),
    leaseLimit: MAX_LEASES_SHOWN,
    history: await seatHistory(store, {
      now,
      window: HISTORY_WINDOW,
      bucketSeconds: HISTORY_BUCKET,
    }),
    events: await auditRecords(store, {
      // Heartbeats would drown the rest; denials have their own list.
      excludeEvents: [
        EventType.licenseLeaseExtended,
        EventType.nodeHeartbeatPing,
        EventType.userHeartbeatPing,
        EventType.licenseDenied,
      ],
      limit: MAX_RECORDS_SHOWN,
    }),
    denials: await auditRecords(store, {
      events: [EventType.licenseDenied],
      limit: MAX_RECORDS_SHOWN,
    }),
    denialCounts: deps.metrics?.denials() ?? null,
  };
  return {
    html: renderStatusPage(data),
    headers: {
      "Content-Security-Policy": await contentSecurityPolicy(),
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "no-referrer",
    },
  };
}
