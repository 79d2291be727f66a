/**
 * Warnings about license files that have expired or will soon: `relay serve`
 * logs them at start and once a day, so an operator renews the files before
 * nodes are refused (claims never hand out an expired file; Keygen issues
 * files with a 30-day ttl by default).
 *
 * The day is counted on the injected clock: a timer only asks, every
 * `intervalMs`, whether a day has passed since the last check, so tests move
 * the clock and call {@link ExpiryWarnings.tick} instead of waiting.
 *
 * @module
 */

import { fileState } from "../lib/expiry.ts";
import { listLicenses } from "../lib/licenses.ts";
import type { Logger } from "../lib/logger.ts";
import type { LicenseInfo, Store } from "../lib/storage/store.ts";
import type { Clock } from "../lib/time.ts";

/** Seconds between two checks, on the injected clock. */
export const CHECK_EVERY_SECONDS = 86_400;

/** Licenses a warning names before it says how many more there are. */
export const NAMED_LICENSES = 10;

/** Options of {@link startExpiryWarnings}. */
export interface ExpiryWarningsOptions {
  store: Store;
  /** Warn about licenses that stop being valid within this many seconds. */
  within: number;
  /** The clock, in unix seconds. */
  now: Clock;
  logger: Logger;
  /** How often the timer asks whether a check is due, in ms (default one hour). */
  intervalMs?: number;
}

/**
 * Shown at every verbosity: renewing takes the operator's action, and a
 * warning kept to `-vv` (where Keygen Relay's warnings are) would first be
 * noticed as refused claims.
 */
const ALWAYS = { always: true } as const;

/** What one check found. */
export interface ExpiryReport {
  /** Licenses no longer valid. */
  expired: number;
  /** Licenses valid now but not for the whole window. */
  expiring: number;
}

/** Running warnings. */
export interface ExpiryWarnings {
  /** Checks and logs now, whatever the time of the last check. */
  check(): Promise<ExpiryReport>;
  /** Checks if a day has passed on the clock since the last check; null if not. */
  tick(): Promise<ExpiryReport | null>;
  /** Stops the timer and waits for a check in progress. */
  stop(): Promise<void>;
}

/**
 * Starts the timer. Call {@link ExpiryWarnings.check} for the check at start:
 * until one ran, the first tick checks.
 */
export function startExpiryWarnings(options: ExpiryWarningsOptions): ExpiryWarnings {
  const { store, within, now, logger } = options;
  let dueAt = -Infinity;
  let running: Promise<unknown> | undefined;

  async function check(): Promise<ExpiryReport> {
    const at = now();
    dueAt = at + CHECK_EVERY_SECONDS;
    const licenses = await listLicenses(store, { expiringBy: at + within });
    const expired = licenses.filter((license) =>
      fileState(license, { now: at, within }) === "expired"
    );
    const expiring = licenses.filter((license) => !expired.includes(license));
    if (expired.length > 0) {
      logger.warn("license files have expired: claims skip them until they are renewed", {
        count: expired.length,
        licenses: names(expired),
      }, ALWAYS);
    }
    if (expiring.length > 0) {
      logger.warn("license files expire soon: renew them", {
        count: expiring.length,
        within: `${within}s`,
        licenses: names(expiring),
      }, ALWAYS);
    }
    return { expired: expired.length, expiring: expiring.length };
  }

  async function tick(): Promise<ExpiryReport | null> {
    return now() < dueAt ? null : await check();
  }

  const timer = setInterval(() => {
    running ??= tick()
      .catch((error) => {
        logger.error("license expiry check failed", {
          error: error instanceof Error ? error.message : String(error),
        });
      })
      .finally(() => (running = undefined));
  }, options.intervalMs ?? 3_600_000);

  return {
    check,
    tick,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

/** `id (pool), id, …` for the first {@link NAMED_LICENSES}, then `and N more`. */
function names(licenses: readonly LicenseInfo[]): string {
  const named = licenses.slice(0, NAMED_LICENSES).map((license) =>
    license.poolName === null ? license.guid : `${license.guid} (${license.poolName})`
  );
  const more = licenses.length - named.length;
  return named.join(", ") + (more > 0 ? ` and ${more} more` : "");
}
