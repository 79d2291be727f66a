/**
 * Markdown pieces of the benchmark report: tables as `deno fmt` aligns them,
 * and the cells most tables share.
 *
 * @module
 */

import { fmt, ms } from "../format.ts";
import type { LoadResult } from "../load.ts";
import type { Run } from "../results.ts";

/** Column alignment: left or right. */
export type Align = "l" | "r";

/** A Markdown table with padded columns (`align` per column; right-aligned by default). */
export function table(header: string[], rows: string[][], align?: Align[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `| ${
      cells.map((c, i) => (align?.[i] === "l" ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(
        " | ",
      )
    } |`;
  const rule = `| ${
    widths.map((w, i) => (align?.[i] === "l" ? "-".repeat(w) : "-".repeat(w - 1) + ":")).join(" | ")
  } |`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

/** ` (1.23×)`: `rate` as a multiple of the ceiling's; empty without a ceiling. */
export function ratio(rate: number, ceiling: number | undefined): string {
  if (ceiling === undefined || !(ceiling > 0)) return "";
  return ` (${(rate / ceiling).toFixed(2)}×)`;
}

/** `p50 / p99` of a run, in ms without the unit. */
export function latency(load: LoadResult): string {
  return `${ms(load.p50)} / ${ms(load.p99)}`;
}

/** `rate/s, p50 / p99 ms` of a run. */
export function rateAndLatency(run: Run): string {
  return `${fmt(run.load.rate)}/s, ${latency(run.load)} ms`;
}

/** `on` or `off`, as the tables write the audit setting. */
export function onOff(audit: boolean): string {
  return audit ? "on" : "off";
}
