/**
 * Time inside Relay: unix seconds, the unit the database stores and the API
 * answers in. Everything in `lib/` and `server/` takes `now` in seconds; the
 * CLI reads the clock once per call and converts at the edge.
 *
 * @module
 */

/** Unix time in whole seconds. */
export type UnixSeconds = number;

/** A clock that reads unix seconds. */
export type Clock = () => UnixSeconds;

/** Whole unix seconds of a date (rounded down). */
export function unixSeconds(date: Date): UnixSeconds {
  return Math.floor(date.getTime() / 1000);
}
