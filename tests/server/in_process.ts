/**
 * `relay serve` in this process, through the same `run()` as `main.ts`, with
 * a clock the test moves: license files and leases expire without waiting.
 *
 * @module
 */

import { type Io, run } from "../../cli/program.ts";
import type { CliResult } from "../helpers.ts";

/** A clock the test sets, in unix seconds. */
export interface TestClock {
  seconds: number;
}

/** A running in-process server. */
export interface InProcessServer {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
  /** Stops it as SIGTERM would; returns its exit code and output. */
  stop(): Promise<CliResult>;
}

/**
 * Runs `relay ...global serve --bind 127.0.0.1 --port 0 ...args` as if the
 * user ran it in `cwd` (see `tests/cli/support.ts`), with `clock` as its clock;
 * resolves once it listens.
 */
export async function serveInProcess(
  args: string[],
  options: { cwd: string; clock: TestClock; env?: Record<string, string>; global?: string[] },
): Promise<InProcessServer> {
  let stdout = "";
  let stderr = "";
  const shutdown = new AbortController();
  const io: Io = {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    env: { NO_COLOR: "1", INIT_CWD: options.cwd, ...options.env },
    stdoutIsTerminal: false,
    stderrIsTerminal: false,
    now: () => new Date(options.clock.seconds * 1000),
    shutdown: shutdown.signal,
  };
  const exited = run(
    [...(options.global ?? []), "serve", "--bind", "127.0.0.1", "--port", "0", ...args],
    io,
  );
  let code: number | undefined;
  exited.then((value) => (code = value));
  const deadline = Date.now() + 20_000;
  while (!stdout.includes('"relay listening"')) {
    if (code !== undefined || Date.now() > deadline) {
      shutdown.abort();
      throw new Error(`relay serve did not start (${code}): ${stderr}${stdout}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const logs = () =>
    stdout.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
  const startup = logs().find((line) => line.msg === "relay listening")!;
  return {
    url: `http://127.0.0.1:${startup.port}`,
    logs,
    async stop(): Promise<CliResult> {
      shutdown.abort();
      return { code: await exited, stdout, stderr };
    },
  };
}

/** `PUT /v1/nodes/{node}`: status and parsed body. */
export async function put(
  url: string,
  node: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}/v1/nodes/${node}`, { method: "PUT" });
  return { status: response.status, body: await response.json() };
}
