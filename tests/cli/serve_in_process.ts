/**
 * `relay serve` run in this process through the same `run()` as `main.ts`,
 * stopped by `Io.shutdown` instead of a signal: for tests that need a serving
 * relay with a fixed clock (exact `expires_at`), and start many of them.
 *
 * @module
 */

import { type Io, run } from "../../cli/program.ts";
import type { CliResult } from "../helpers.ts";

/** A relay serving in this process. */
export interface InProcessServer extends AsyncDisposable {
  /** The parsed start-up line. */
  startup: Record<string, unknown>;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Stops it as SIGTERM would and returns what it printed and its exit code. */
  stop(): Promise<CliResult>;
}

/**
 * Runs `relay serve --bind 127.0.0.1 --port 0 ...args` in `cwd` (as
 * `INIT_CWD`) with the clock fixed at `now`, and resolves once it listens; a
 * run that ends before (a refused setting) rejects with its output.
 */
export async function serveInProcess(
  args: string[],
  options: { cwd: string; now: Date; env?: Record<string, string> },
): Promise<InProcessServer> {
  let stdout = "";
  let stderr = "";
  const shutdown = new AbortController();
  let listening: (line: Record<string, unknown>) => void;
  const started = new Promise<Record<string, unknown>>((resolve) => (listening = resolve));
  const io: Io = {
    stdout: (text) => {
      stdout += text;
      for (const line of text.split("\n")) {
        if (line.includes('"relay listening"')) listening(JSON.parse(line));
      }
    },
    stderr: (text) => (stderr += text),
    env: { NO_COLOR: "1", INIT_CWD: options.cwd, ...options.env },
    stdoutIsTerminal: false,
    stderrIsTerminal: false,
    now: () => options.now,
    shutdown: shutdown.signal,
  };
  const exited = run(["serve", "--bind", "127.0.0.1", "--port", "0", ...args], io);
  const first = await Promise.race([started, exited]);
  if (typeof first === "number") {
    throw new Error(`relay serve exited ${first} before listening: ${stderr}${stdout}`);
  }
  let result: Promise<CliResult> | undefined;
  const stop = () => {
    result ??= (async () => {
      shutdown.abort();
      const code = await exited;
      return { code, stdout, stderr };
    })();
    return result;
  };
  return {
    startup: first,
    url: `http://127.0.0.1:${first.port}`,
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  };
}
