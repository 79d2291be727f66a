/**
 * How the benchmark writes numbers, in its log and in its report alike.
 *
 * @module
 */

import type { CpuUse } from "./results.ts";

/** A number with thousands separators and `digits` decimals; "–" when not finite. */
export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return "–";
  return n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** Milliseconds with three significant digits (at least the whole number); "–" when not finite. */
export function ms(n: number): string {
  if (!Number.isFinite(n)) return "–";
  return n >= 100 ? fmt(n, 0) : n >= 10 ? fmt(n, 1) : fmt(n, 2);
}

/** CPU seconds per second of wall time, in % of one core. */
export function cpuPercent(seconds: number, cpu: CpuUse): string {
  return fmt((seconds / cpu.wall) * 100);
}
