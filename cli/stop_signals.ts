/**
 * Stopping a long-running command cleanly: SIGINT, SIGTERM or SIGHUP
 * (SIGINT only on Windows), or `Io.shutdown` aborted (tests in-process).
 * Without listeners, SIGINT and SIGTERM would kill the process at once,
 * skipping the command's clean-up.
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

/** Watches the process's stop signals and `shutdown` (see the module doc). */
export function watchStopSignals(shutdown?: AbortSignal): StopSignals {
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM", "SIGHUP"];
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
      shutdown?.removeEventListener("abort", onSignal);
    },
  };
}
