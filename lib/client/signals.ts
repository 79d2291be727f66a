/**
 * SIGINT and SIGTERM on either runtime: `Deno.addSignalListener` on Deno,
 * `process.on` on Node.js. Found at run time, so the client needs neither
 * runtime's types.
 *
 * @module
 */

/** The signals a client releases its seat on. */
export const SHUTDOWN_SIGNALS = ["SIGINT", "SIGTERM"] as const;

/** One of {@link SHUTDOWN_SIGNALS}. */
export type ShutdownSignal = typeof SHUTDOWN_SIGNALS[number];

/** Exit codes a shell gives a process killed by these signals: 128 + the signal number. */
export const SIGNAL_EXIT_CODES: Record<ShutdownSignal, number> = { SIGINT: 130, SIGTERM: 143 };

interface DenoLike {
  addSignalListener(signal: string, handler: () => void): void;
  removeSignalListener(signal: string, handler: () => void): void;
  exit(code: number): never;
}

interface ProcessLike {
  on(signal: string, handler: () => void): void;
  off(signal: string, handler: () => void): void;
  exit(code: number): never;
}

/**
 * Calls `handler` on SIGINT and SIGTERM until the returned function is
 * called. On either runtime the signal then no longer ends the process by
 * itself: the handler must (see {@link exitProcess}).
 */
export function onShutdownSignal(handler: (signal: ShutdownSignal) => void): () => void {
  const runtime = globalThis as { Deno?: DenoLike; process?: ProcessLike };
  const handlers = SHUTDOWN_SIGNALS.map((signal) => [signal, () => handler(signal)] as const);
  const deno = runtime.Deno;
  if (deno?.addSignalListener) {
    for (const [signal, listener] of handlers) deno.addSignalListener(signal, listener);
    return () => {
      for (const [signal, listener] of handlers) deno.removeSignalListener(signal, listener);
    };
  }
  const process = runtime.process;
  if (process?.on) {
    for (const [signal, listener] of handlers) process.on(signal, listener);
    return () => {
      for (const [signal, listener] of handlers) process.off(signal, listener);
    };
  }
  return () => {};
}

/** Ends the process with `code` (`Deno.exit` or `process.exit`). */
export function exitProcess(code: number): void {
  const runtime = globalThis as { Deno?: DenoLike; process?: ProcessLike };
  if (runtime.Deno?.exit) runtime.Deno.exit(code);
  else runtime.process?.exit(code);
}
