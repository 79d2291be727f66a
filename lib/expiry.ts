/**
 * When a license stops being valid: the earlier of its file's expiry
 * (`meta.expiry`, Keygen's 30-day default ttl) and the license's own
 * `expiry`. An expired file is refused by Keygen's verifier in the
 * application, so claims never hand one out (`lib/leases.ts`), `relay serve`
 * warns before it happens, and `ls` and `stat` show it.
 *
 * @module
 */

/** The two expiries a license row stores, in unix seconds; null: never. */
export interface ExpiryDates {
  /** The file's `meta.expiry`; null for a file without a ttl. */
  fileExpiresAt: number | null;
  /** The license's own expiry; null when it has none. */
  expiresAt: number | null;
}

/** How far ahead `ls`, `stat` and `relay serve` call a license `expiring`: 7 days. */
export const DEFAULT_EXPIRY_WARNING_SECONDS = 7 * 86_400;

/** The unix second from which the license is no longer valid; null: it never expires. */
export function validUntil(dates: ExpiryDates): number | null {
  const { fileExpiresAt, expiresAt } = dates;
  if (fileExpiresAt === null) return expiresAt;
  if (expiresAt === null) return fileExpiresAt;
  return Math.min(fileExpiresAt, expiresAt);
}

/** Whether the license may be handed out at `now` (unix seconds). */
export function isValidAt(dates: ExpiryDates, now: number): boolean {
  const until = validUntil(dates);
  return until === null || until > now;
}

/**
 * A license's validity at a moment: `valid`, `expiring` (valid, but not for
 * the whole window ahead), or `expired`.
 */
export type FileState = "valid" | "expiring" | "expired";

/**
 * The {@link FileState} at `now` with a window of `within` seconds (both
 * unix seconds).
 */
export function fileState(
  dates: ExpiryDates,
  { now, within }: { now: number; within: number },
): FileState {
  const until = validUntil(dates);
  if (until === null || until > now + within) return "valid";
  return until > now ? "expiring" : "expired";
}
