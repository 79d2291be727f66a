/**
 * The benchmark's progress log: one line per measurement, stamped with the
 * seconds since the benchmark started.
 *
 * @module
 */

const started = performance.now();

/** Seconds since the benchmark started. */
export function elapsedSeconds(): number {
  return (performance.now() - started) / 1000;
}

/** Prints `message` stamped with {@link elapsedSeconds}. */
export function log(message: string): void {
  console.log(`[${elapsedSeconds().toFixed(1).padStart(6)}s] ${message}`);
}
