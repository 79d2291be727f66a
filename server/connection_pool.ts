/**
 * The open connections of `relay serve` (`server/listener.ts`): their cap,
 * which one makes room, and the header and idle timeouts. Deno's HTTP engine
 * serves each connection; this module only sees when its requests enter and
 * leave the handler, and closes it.
 *
 * A connection with a request in the handler is never closed. Others are
 * closed at once (not gracefully): a graceful close waits for the response
 * being written, forever if the peer never reads. A response is written as
 * soon as the handler returns, so a connection whose last request ended less
 * than {@link FLUSH_MS} ago is not closed at once either.
 *
 * @module
 */

import type { Logger } from "../lib/logger.ts";

/** A request handler, as `Deno.serve` takes it. */
export type Handler = (request: Request) => Response | Promise<Response>;

/** One connection as Deno's HTTP engine serves it. */
export interface ServedConnection {
  /** Resolves (or rejects, on a reset) once the connection is closed. */
  finished: Promise<void>;
  /** Stops reading new requests, lets the one in flight finish, then closes. */
  shutdown(): Promise<void>;
  /**
   * Closes at once, also when a response is stuck because the peer does not
   * read (which {@link shutdown} would wait for forever); a no-op once closed.
   */
  close(): void;
}

/** Serves `handler` on `conn` with Deno's HTTP engine. */
export type ServeConnection = (conn: Deno.Conn, handler: Handler) => ServedConnection;

/** What a {@link ConnectionPool} is built from. */
export interface PoolOptions {
  /** Most connections open at once, at least 1. */
  maxConnections: number;
  /** How long a kept-alive connection may wait for its next request, in ms (at least 100). */
  idleTimeoutMs: number;
  /** How long a new connection may take to complete its first request's headers, in ms. */
  headerTimeoutMs: number;
  handler: Handler;
  serve: ServeConnection;
  logger: Logger;
  /** Milliseconds on a monotonic clock; `performance.now` by default. */
  clock?: () => number;
}

/**
 * How long after its handler returned a response may still be on its way
 * out, in ms: a connection is not closed at once before then.
 */
export const FLUSH_MS = 100;

/** Why a connection was closed, as the debug log names it. */
type CloseReason = "header timeout" | "idle timeout" | "making room" | "shutdown";

/** One open connection and what the timeouts look at. */
interface Tracked {
  served: ServedConnection;
  /** Requests in the handler now (HTTP/2 runs several at once). */
  active: number;
  /** Whether a request has ended: the idle timeout applies, not the header timeout. */
  answered: boolean;
  /** Clock time of the accept, or of the end of the last request. */
  since: number;
  /** A close has begun. */
  closing: boolean;
}

/**
 * The open connections. A connection that completes no request within the
 * header timeout of its accept is closed, and so is one whose last request
 * ended an idle timeout ago.
 */
export class ConnectionPool {
  readonly #open = new Set<Tracked>();
  readonly #options: PoolOptions;
  readonly #clock: () => number;
  readonly #sweeper: ReturnType<typeof setInterval>;
  #stopping = false;
  /** Resolved when a connection closes or a request ends, if someone waits for that. */
  #changed: PromiseWithResolvers<void> | null = null;
  /** Resolved when a connection closes, if someone waits for that. */
  #closed: PromiseWithResolvers<void> | null = null;

  constructor(options: PoolOptions) {
    this.#options = options;
    this.#clock = options.clock ?? (() => performance.now());
    // A quarter of the shorter timeout: each fires within 25 % of its value.
    const period = Math.min(options.headerTimeoutMs, options.idleTimeoutMs) / 4;
    this.#sweeper = setInterval(() => this.sweep(), Math.min(1_000, Math.max(10, period)));
  }

  /** Connections open now, those being closed included (they still hold a descriptor). */
  get size(): number {
    return this.#open.size;
  }

  /** Whether the pool holds its most connections: {@link makeRoom} has work to do. */
  get full(): boolean {
    return this.#open.size >= this.#options.maxConnections;
  }

  /** Whether {@link stop} was called. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** Serves one accepted connection. */
  add(conn: Deno.Conn): void {
    const tracked: Tracked = {
      served: undefined as unknown as ServedConnection,
      active: 0,
      answered: false,
      since: this.#clock(),
      closing: false,
    };
    try {
      tracked.served = this.#options.serve(conn, this.#track(tracked));
    } catch (error) {
      try {
        conn.close();
      } catch {
        // The engine took the connection before failing.
      }
      this.#options.logger.debug("connection not served", { error: String(error) });
      return;
    }
    this.#open.add(tracked);
    const gone = () => {
      this.#open.delete(tracked);
      this.#changed = settle(this.#changed);
      this.#closed = settle(this.#closed);
    };
    tracked.served.finished.then(gone, (error) => {
      // A reset or a failed TLS handshake ends that connection, not the server.
      this.#options.logger.debug("connection failed", { error: String(error) });
      gone();
    });
  }

  /**
   * Resolves once one more connection fits under the cap (or on stop),
   * closing the connection idle the longest to make room; while every
   * connection has a request in flight, waits for one to end.
   */
  async makeRoom(): Promise<void> {
    while (this.#open.size >= this.#options.maxConnections && !this.#stopping) {
      if (this.freeOne()) await this.closed();
      else await pause(FLUSH_MS, this.changed());
    }
  }

  /**
   * Starts closing the connection idle the longest, one that never completed
   * a request before any that did, unless a close is under way already.
   * False when none can be closed now: each has a request in flight, or
   * ended one less than {@link FLUSH_MS} ago.
   */
  freeOne(): boolean {
    const flushed = this.#clock() - FLUSH_MS;
    let victim: Tracked | undefined;
    for (const tracked of this.#open) {
      if (tracked.closing) return true;
      if (tracked.active > 0 || (tracked.answered && tracked.since > flushed)) continue;
      if (
        victim === undefined ||
        (victim.answered && !tracked.answered) ||
        (victim.answered === tracked.answered && tracked.since < victim.since)
      ) {
        victim = tracked;
      }
    }
    if (victim === undefined) return false;
    this.#close(victim, "making room");
    return true;
  }

  /** Resolves when a connection closes, a request ends, or the pool stops. */
  changed(): Promise<void> {
    this.#changed ??= Promise.withResolvers();
    return this.#changed.promise;
  }

  /** Resolves when a connection closes (its descriptor is free) or the pool stops. */
  closed(): Promise<void> {
    this.#closed ??= Promise.withResolvers();
    return this.#closed.promise;
  }

  /** Closes the connections whose header or idle timeout has passed. */
  sweep(): void {
    const now = this.#clock();
    const { headerTimeoutMs, idleTimeoutMs } = this.#options;
    for (const tracked of this.#open) {
      if (tracked.active > 0 || tracked.closing) continue;
      const limit = tracked.answered ? Math.max(idleTimeoutMs, FLUSH_MS) : headerTimeoutMs;
      if (now - tracked.since >= limit) {
        this.#close(tracked, tracked.answered ? "idle timeout" : "header timeout");
      }
    }
  }

  /** Stops the timeouts and wakes every waiter; {@link makeRoom} then returns. */
  stop(): void {
    this.#stopping = true;
    clearInterval(this.#sweeper);
    this.#changed = settle(this.#changed);
    this.#closed = settle(this.#closed);
  }

  /**
   * Stops, closes every connection, and resolves when all are closed: those
   * with a request in flight, or one just answered, once it is answered.
   */
  async closeAll(): Promise<void> {
    this.stop();
    const flushed = this.#clock() - FLUSH_MS;
    const all = [...this.#open];
    for (const tracked of all) {
      if (tracked.closing) continue;
      if (tracked.active > 0 || (tracked.answered && tracked.since > flushed)) {
        tracked.closing = true;
        tracked.served.shutdown().catch(() => {
          // Closed already; `finished` reports how.
        });
      } else {
        this.#close(tracked, "shutdown");
      }
    }
    await Promise.allSettled(all.map((tracked) => tracked.served.finished));
  }

  /** The handler of one connection: `handler`, noting when requests start and end. */
  #track(tracked: Tracked): Handler {
    const { handler } = this.#options;
    const clock = this.#clock;
    const ended = () => {
      tracked.active--;
      tracked.answered = true;
      tracked.since = clock();
      this.#changed = settle(this.#changed);
    };
    // Not an async function: one promise per request fewer, on the hot path.
    return function tracking(request: Request): Promise<Response> {
      tracked.active++;
      let answer: Response | Promise<Response>;
      try {
        answer = handler(request);
      } catch (error) {
        ended();
        return Promise.reject(error);
      }
      return Promise.resolve(answer).then((response) => {
        ended();
        return response;
      }, (error) => {
        ended();
        throw error;
      });
    };
  }

  /** Closes at once; see the module documentation. */
  #close(tracked: Tracked, reason: CloseReason): void {
    tracked.closing = true;
    this.#options.logger.debug("closing connection", { reason });
    tracked.served.close();
  }
}

/** Resolves after `ms`, or earlier when `early` does. */
export async function pause(ms: number, early: Promise<void>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([early, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** Resolves a waiter's promise, if any; returns the empty slot. */
function settle(waiter: PromiseWithResolvers<void> | null): null {
  waiter?.resolve();
  return null;
}
