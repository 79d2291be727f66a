/**
 * The listening socket of `relay serve`: our own accept loop, so that a
 * flood of connections cannot take the server down.
 *
 * `Deno.serve` accepts in native code and ends its whole server, with an
 * uncaught error, on the first failed `accept()` (`EMFILE` once descriptors
 * run out); it has no connection cap and no header or idle timeouts. Here
 * each accepted connection is handed to Deno's own HTTP engine, the code
 * `Deno.serve` runs per connection ({@link denoEngine}), so requests,
 * responses and HTTP/2 over TLS behave exactly as before, while:
 *
 * - a failed `accept()` is survived: logged once per burst; when descriptors
 *   ran out, the connection idle the longest is closed to free one; then
 *   accept again after a short pause;
 * - at most `maxConnections` are open, and the timeouts apply
 *   (`server/connection_pool.ts`).
 *
 * @module
 */

import type { Logger } from "../lib/logger.ts";
import {
  ConnectionPool,
  type Handler,
  pause,
  type ServeConnection,
  type ServedConnection,
} from "./connection_pool.ts";

export type { Handler } from "./connection_pool.ts";

/** What {@link serveConnections} needs. */
export interface ListenerOptions {
  hostname: string;
  /** 0 picks a free port. */
  port: number;
  /** PEM certificate chain and key: HTTPS (HTTP/2 or HTTP/1.1 by ALPN); null: plain HTTP. */
  tls: { cert: string; key: string } | null;
  /** Most connections open at once, at least 1. */
  maxConnections: number;
  /** How long a kept-alive connection may wait for its next request, in ms. */
  idleTimeoutMs: number;
  /** How long a new connection may take to complete its first request's headers, in ms. */
  headerTimeoutMs: number;
  logger: Logger;
  /** Called once listening, as `Deno.serve` calls it. */
  onListen?: (addr: Deno.NetAddr) => void;
}

/** A running server; see {@link serveConnections}. */
export interface ConnectionServer {
  /** The address it listens on (the real port when 0 was asked). */
  readonly addr: Deno.NetAddr;
  /** Connections open right now. */
  readonly connections: number;
  /**
   * Stops accepting, closes idle connections, lets the requests in flight
   * finish, and resolves when every connection is closed.
   */
  shutdown(): Promise<void>;
}

/** After this long without a failed accept, a burst of failures is over, in ms. */
export const BURST_QUIET_MS = 2_000;

/** The first pause after a failed accept, doubled while they keep failing, in ms. */
const MIN_BACKOFF_MS = 10;
const MAX_BACKOFF_MS = 1_000;

/**
 * Listens and serves `handler` on every connection, as the module
 * documentation describes.
 *
 * @throws what `Deno.listen` and `Deno.listenTls` throw (`AddrInUse`,
 *   `AddrNotAvailable`, `PermissionDenied`, an unusable certificate or key),
 *   synchronously, as `Deno.serve` does.
 */
export function serveConnections(options: ListenerOptions, handler: Handler): ConnectionServer {
  const serve = denoEngine(options.logger);
  const listener = options.tls
    ? Deno.listenTls({
      hostname: options.hostname,
      port: options.port,
      cert: options.tls.cert,
      key: options.tls.key,
      // What Deno.serve offers.
      alpnProtocols: ["h2", "http/1.1"],
    })
    : Deno.listen({ hostname: options.hostname, port: options.port });
  const pool = new ConnectionPool({ ...options, handler, serve });
  options.onListen?.(listener.addr);
  const accepting = acceptLoop(listener, pool, options.logger);
  return {
    addr: listener.addr,
    get connections() {
      return pool.size;
    },
    async shutdown() {
      pool.stop();
      try {
        listener.close();
      } catch {
        // Closed already.
      }
      await accepting;
      await pool.closeAll();
    },
  };
}

/** Accepts until the listener closes; see the module documentation. */
async function acceptLoop(
  listener: Deno.Listener,
  pool: ConnectionPool,
  logger: Logger,
): Promise<void> {
  const failures = new FailureBursts(logger);
  let backoff = MIN_BACKOFF_MS;
  try {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (pool.stopping || isClosed(error)) return;
        const exhausted = isOutOfDescriptors(error);
        failures.failed(error, { exhausted, connections: pool.size });
        // Free a descriptor, then retry as soon as a connection closes.
        if (exhausted) pool.freeOne();
        await pause(backoff, pool.closed());
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        continue;
      }
      backoff = MIN_BACKOFF_MS;
      // Room is made for a client that came, not ahead of one: a full pool
      // keeps its connections until someone else needs the place.
      if (pool.full) await pool.makeRoom();
      if (pool.stopping) {
        conn.close();
        return;
      }
      pool.add(conn);
    }
  } finally {
    failures.stop();
  }
}

/**
 * Logs failed accepts once per burst: a warning at the first failure, a
 * notice when none has followed for {@link BURST_QUIET_MS}.
 */
class FailureBursts {
  readonly #logger: Logger;
  #failures = 0;
  #started = 0;
  #quiet: ReturnType<typeof setTimeout> | undefined;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  failed(error: unknown, { exhausted, connections }: { exhausted: boolean; connections: number }) {
    if (this.#failures++ === 0) {
      this.#started = performance.now();
      const fields = { error: errorText(error), connections };
      if (exhausted) {
        this.#logger.warn(
          "Out of file descriptors: closing idle connections to accept new ones; raise the open-file limit (ulimit -n, LimitNOFILE) or lower --max-connections",
          fields,
          // At every verbosity, as the notice that ends the burst: raising the
          // limit takes the operator's action.
          { always: true },
        );
      } else {
        this.#logger.warn("Cannot accept connections: retrying", fields, { always: true });
      }
    }
    clearTimeout(this.#quiet);
    this.#quiet = setTimeout(() => this.#end(), BURST_QUIET_MS);
  }

  /** Ends the burst without a log line (the server is stopping). */
  stop(): void {
    clearTimeout(this.#quiet);
  }

  #end(): void {
    this.#logger.notice("accepting connections again", {
      failed_accepts: this.#failures,
      duration_ms: Math.round(performance.now() - this.#started - BURST_QUIET_MS),
    });
    this.#failures = 0;
  }
}

/** `accept()` failed because the listener was closed. */
function isClosed(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted;
}

/** The process (`EMFILE`) or the system (`ENFILE`) has no descriptor left. */
function isOutOfDescriptors(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "EMFILE" || code === "ENFILE";
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Deno's `serveHttpOnConnection`, see {@link denoEngine}. */
type ServeOn = (
  conn: Deno.Conn,
  signal: AbortSignalLike,
  handler: Handler,
  onError: (error: unknown) => Response,
  onListen: () => void,
) => Omit<ServedConnection, "close">;

/** What `serveHttpOnConnection` does with its signal: add one "abort" listener. */
interface AbortSignalLike {
  addEventListener(type: string, listener: () => void): void;
}

/**
 * Serves one accepted connection with Deno's HTTP engine: its
 * `serveHttpOnConnection`, which runs the same native code (`serve_http_on`)
 * as `Deno.serve` does for each connection it accepts. That function is not
 * a documented API: Deno keeps it on `Deno[Deno.internal]` for its own tests
 * and defines it there on purpose for code that reaches in (Deno 2.9), so a
 * Deno without it fails loudly here, at start-up, rather than serving
 * without protection.
 *
 * @throws {Error} this Deno has no `serveHttpOnConnection`.
 */
export function denoEngine(logger: Logger): ServeConnection {
  const deno = Deno as unknown as { internal?: symbol } & Record<symbol, unknown>;
  const internals = deno.internal === undefined
    ? undefined
    : deno[deno.internal] as Record<string, unknown> | undefined;
  const serveOn = internals?.serveHttpOnConnection as ServeOn | undefined;
  if (typeof serveOn !== "function") {
    throw new Error(
      `Deno ${Deno.version.deno} lacks serveHttpOnConnection, which relay serve needs`,
    );
  }
  const onError = (error: unknown) => {
    // Deno.serve's default answer; the handler catches its own errors.
    logger.error("request failed", { error: String(error) });
    return new Response("Internal Server Error", { status: 500 });
  };
  return (conn, handler) => {
    // The engine closes the connection at once when its signal aborts. A
    // real AbortSignal would run that listener with no one to catch its
    // BadResource once the connection has closed by itself, an uncaught
    // error that ends the process; here the listener is called in a try.
    let abort: (() => void) | undefined;
    const signal: AbortSignalLike = {
      addEventListener(type, listener) {
        if (type === "abort") abort = listener;
      },
    };
    const served = serveOn(conn, signal, handler, onError, () => {});
    return {
      finished: served.finished,
      shutdown: () => served.shutdown(),
      close() {
        if (abort === undefined) {
          // A Deno that ignores the signal: close gracefully instead.
          served.shutdown().catch(() => {});
          return;
        }
        try {
          abort();
        } catch {
          // Closed already (BadResource): nothing left to close.
        }
      },
    };
  };
}
