/**
 * Time as the client sees it: the current time and timers, injectable so
 * that tests move time instead of waiting for it.
 *
 * @module
 */

/** The client's clock and timers. */
export interface ClientClock {
  /** The current time, in milliseconds since the Unix epoch. */
  now(): number;
  /** Calls `callback` once after `ms` milliseconds; returns a handle for {@link clearTimeout}. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a timer of {@link setTimeout}. */
  clearTimeout(handle: unknown): void;
}

/** The platform's clock: `Date.now()` and the global timers. */
export const SYSTEM_CLOCK: ClientClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as number),
};
