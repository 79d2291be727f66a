/**
 * Stopping a long-running command cleanly: SIGINT, SIGTERM or SIGHUP
 * (SIGINT only on Windows), or `Io.shutdown` aborted (tests in-process).
 * Without listeners, SIGINT and SIGTERM would kill the process at once,
 * skipping the command's clean-up.
 *
 * SIGHUP too: a closed terminal or SSH session sends it, and without a
 * listener it would kill the process on the spot. The listeners stay until
 * disposed, after the clean-up: `deno task` sometimes forwards one SIGINT
 * twice, and a repeat must not kill the process half-way through closing
 * the database.
 *
 * @module
 */

/** A stop request being watched for; dispose it to remove the listeners. */
export interface StopSignals extends Disposable {
  /** Resolves on the first signal, or when `shutdown` is aborted. */
  readonly received: Promise<void>;
  /** Whether it has resolved. */
  readonly stopped: boolean;
}

/**
 * Watches the process's stop signals and `shutdown` (see the module doc).
 * With `onHangup`, SIGHUP calls it (a reload) instead of stopping.
 */
export function watchStopSignals(shutdown?: AbortSignal, onHangup?: () => void): StopSignals {
  const unix = Deno.build.os !== "windows";
  const signals: Deno.Signal[] = !unix
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM", ...(onHangup ? [] : ["SIGHUP" as const])];
  const hangup = unix ? onHangup : undefined;
  if (hangup) Deno.addSignalListener("SIGHUP", hangup);
  let stopped = false;
  let onSignal = () => {};
  const received = new Promise<void>((resolve) => {
    onSignal = () => {
      stopped = true;
      resolve();
    };
  });
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  if (shutdown?.aborted) onSignal();
  else shutdown?.addEventListener("abort", onSignal);
  return {
    received,
    get stopped() {
      return stopped;
    },
    [Symbol.dispose]() {
      for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
      if (hangup) Deno.removeSignalListener("SIGHUP", hangup);
      shutdown?.removeEventListener("abort", onSignal);
    },
  };
}
