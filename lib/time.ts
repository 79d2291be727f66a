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

const SPAN_UNITS: readonly [string, number][] = [["d", 86_400], ["h", 3_600], ["m", 60], ["s", 1]];

/**
 * Seconds as their two largest units, for people: `45s`, `2m5s`, `1h30m`,
 * `6d23h`, `1h` (not `1h0m`), `0s`; negative (a time passed) with a minus
 * sign. `separator` goes between the units (`"1h 30m"`).
 */
export function formatSpan(seconds: number, separator = ""): string {
  if (seconds < 0) return `-${formatSpan(-seconds, separator)}`;
  const parts: string[] = [];
  let rest = Math.floor(seconds);
  for (const [unit, size] of SPAN_UNITS) {
    if (parts.length === 2) break;
    const amount = Math.floor(rest / size);
    rest -= amount * size;
    if (amount > 0 || parts.length > 0) parts.push(`${amount}${unit}`);
  }
  if (parts.length === 2 && parts[1].startsWith("0")) parts.pop();
  return parts.length === 0 ? "0s" : parts.join(separator);
}
