/**
 * `relay serve` run in the test's own process through the same `run()` that
 * `main.ts` calls, with a clock the test moves: no process to spawn, and no
 * real time to wait for a lease to expire.
 *
 * @module
 */

import { type Io, run } from "../../cli/program.ts";

/**
 * A clock that stands still until the test moves it, starting at a whole
 * second (the real time by default), so that unix-second arithmetic is exact.
 */
export class FakeClock {
  #ms: number;

  constructor(start: Date = new Date()) {
    this.#ms = Math.floor(start.getTime() / 1000) * 1000;
  }

  /** The current time; pass `() => clock.now()` as `Io.now`. */
  now(): Date {
    return new Date(this.#ms);
  }

  /** The current time in unix seconds, as the server's `Relay-Clock` shows it. */
  unix(): number {
    return this.#ms / 1000;
  }

  /** The current time in unix seconds (as {@link unix}). */
  get seconds(): number {
    return this.unix();
  }

  /** Sets the clock to `unix` seconds, back as well as forward. */
  set seconds(unix: number) {
    this.#ms = Math.floor(unix) * 1000;
  }

  /** Moves the clock forward by `seconds`. */
  advance(seconds: number): void {
    if (!(seconds >= 0)) throw new RangeError(`Cannot move the clock back: ${seconds}s`);
    this.#ms += seconds * 1000;
  }

  /** Moves the clock forward to `unix` seconds (never back). */
  advanceTo(unix: number): void {
    this.advance(Math.max(0, unix - this.unix()));
  }
}

/** How an in-process server ended. */
export interface ServerExit {
  /** What `run()` returned: the exit code `main.ts` would exit with. */
  code: number;
  stdout: string;
  stderr: string;
}

/** A `relay serve` running in this process. */
export interface InProcessServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>` (`https:` with TLS; the host given in the options). */
  url: string;
  port: number;
  /** The server's clock. */
  clock: FakeClock;
  /**
   * An HTTP client for this server alone, closed when it stops: no pooled
   * connection outlives the server, to be handed to a later one on its port.
   */
  client: Deno.HttpClient;
  /** Every stdout line so far (JSON log lines, the start-up line first unless warnings came). */
  lines: string[];
  /** The parsed "relay listening" line. */
  startup: Record<string, unknown>;
  /** The stdout lines so far, parsed (JSON log lines). */
  logs(): Record<string, unknown>[];
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Stops it as SIGTERM would (graceful shutdown) and waits for `run()` to return. */
  stop(): Promise<ServerExit>;
}

/** Options of {@link serveInProcess}. */
export interface InProcessOptions {
  /**
   * The database file, given as `RELAY_DATABASE` so that a `--database` flag
   * (or `env.RELAY_DATABASE`) still wins. The test process runs in the
   * repository, where the relative default would land: omit it only when the
   * arguments or `env` name the database.
   */
  database?: string;
  /** Environment variables; the rest of the test process's environment is not seen. */
  env?: Record<string, string>;
  /** Global options, placed before `serve` (e.g. `-v`, `--no-audit`). */
  global?: string[];
  /** The clock; a new {@link FakeClock} at the real time by default. */
  clock?: FakeClock;
  /** Replaces the default `--bind 127.0.0.1 --port 0` (for tests of those flags). */
  listen?: string[];
  /** Host of `url`; default 127.0.0.1. */
  host?: string;
  /**
   * The folder the user ran the command in (`INIT_CWD`): relative paths,
   * the default database included, resolve against it.
   */
  cwd?: string;
}

/**
 * Runs `relay [global] serve --bind 127.0.0.1 --port 0 ...args` in-process
 * and resolves once it prints "relay listening"; rejects with its output if
 * `run()` returns first. Stop it (or dispose it) before the test ends.
 */
export async function serveInProcess(
  args: string[],
  options: InProcessOptions,
): Promise<InProcessServer> {
  const clock = options.clock ?? new FakeClock();
  const lines: string[] = [];
  let pending = "";
  let stderr = "";
  const shutdown = new AbortController();
  const { promise: listening, resolve: onListening } = Promise.withResolvers<
    Record<string, unknown>
  >();
  const io: Io = {
    stdout(text) {
      pending += text;
      let newline;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        lines.push(line);
        if (line.includes('"relay listening"')) onListening(JSON.parse(line));
      }
    },
    stderr: (text) => (stderr += text),
    env: {
      NO_COLOR: "1",
      ...(options.cwd === undefined ? {} : { INIT_CWD: options.cwd }),
      ...(options.database === undefined ? {} : { RELAY_DATABASE: options.database }),
      ...options.env,
    },
    stdoutIsTerminal: false,
    stderrIsTerminal: false,
    now: () => clock.now(),
    shutdown: shutdown.signal,
  };
  const listen = options.listen ?? ["--bind", "127.0.0.1", "--port", "0"];
  const exited = run([...(options.global ?? []), "serve", ...listen, ...args], io);
  const startup = await Promise.race([listening, exited.then(() => null)]);
  const output = () => lines.map((line) => line + "\n").join("") + pending;
  if (startup === null) {
    throw new Error(`relay serve did not start (exit ${await exited}): ${stderr}${output()}`);
  }
  const port = Number(startup.port);
  const client = Deno.createHttpClient({});
  let stopped: Promise<ServerExit> | undefined;
  function stop(): Promise<ServerExit> {
    stopped ??= (async () => {
      shutdown.abort();
      const code = await exited;
      client.close();
      return { code, stdout: output(), stderr };
    })();
    return stopped;
  }
  return {
    url: `${new URL(String(startup.address)).protocol}//${options.host ?? "127.0.0.1"}:${port}`,
    port,
    clock,
    client,
    lines,
    startup,
    logs: () => lines.filter((line) => line !== "").map((line) => JSON.parse(line)),
    stderr: () => stderr,
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop();
    },
  };
}

/** `PUT /v1/nodes/{node}`: status and parsed JSON body. */
export async function put(
  url: string,
  node: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}/v1/nodes/${node}`, { method: "PUT" });
  return { status: response.status, body: await response.json() };
}
