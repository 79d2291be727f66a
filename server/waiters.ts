/**
 * Waiting for a seat (`PUT …?wait=DURATION`): claims that found no free
 * license queue per pool, first come first served, and the one at the head
 * tries again whenever a seat may have been freed:
 *
 * - at once, when this server freed one (a `DELETE`, the reaper);
 * - on every poll tick while anyone waits, which also catches what other
 *   processes did to the shared database (another server's releases, an
 *   operator's `relay release`, `relay add` of new licenses) and leases that
 *   ran out (a claim takes an expired lease itself).
 *
 * A waiter gives up its place when its time is up (by the server's clock,
 * checked on each tick), when its client disconnects, or when the server
 * shuts down; it then gets the answer of its last attempt (a `410`). The
 * queue is capped: beyond it a claim is answered at once.
 *
 * @module
 */

import { parseDuration } from "../lib/config.ts";

/** Pool key: `null` (licenses without a pool) and names kept apart. */
type PoolKey = string;

/** One queued claim. */
interface Waiter {
  /** Called when it is this waiter's turn to try (it is at the head). */
  wake: () => void;
  /** The server clock (unix seconds) at which it gives up. */
  until: number;
  /** Ends the wait with the last answer. */
  giveUp: () => void;
}

/** Options of {@link SeatWaiters}. */
export interface SeatWaitersOptions {
  /** Most claims waiting at once, over all pools. */
  maxWaiters: number;
  /** The server clock, unix seconds. */
  now: () => number;
  /** How often the head of each queue tries again while anyone waits, in ms (default 250). */
  pollMs?: number;
}

/** What one wait needs. */
export interface WaitRequest<T> {
  /** The pool (null: licenses without a pool). */
  pool: string | null;
  /** Server clock (unix seconds) at which to give up. */
  until: number;
  /** Aborted when the client disconnects. */
  signal?: AbortSignal;
  /** One try: resolves to the answer, or undefined while there is still no seat. */
  attempt: () => Promise<T | undefined>;
}

/** The queues of claims waiting for a seat, per pool. */
export class SeatWaiters {
  #queues = new Map<PoolKey, Waiter[]>();
  #count = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  readonly #options: SeatWaitersOptions;

  constructor(options: SeatWaitersOptions) {
    this.#options = options;
  }

  /** How many claims are waiting. */
  get size(): number {
    return this.#count;
  }

  /** Whether another claim may wait now (under the cap, not shutting down). */
  get open(): boolean {
    return !this.#closed && this.#count < this.#options.maxWaiters;
  }

  /**
   * Queues a claim and resolves to the first answer `attempt` gives, or to
   * undefined when the wait ends without one. Tries at once only if nobody
   * of the pool waits before it.
   */
  wait<T>(request: WaitRequest<T>): Promise<T | undefined> {
    if (!this.open) return Promise.resolve(undefined);
    const key = poolKey(request.pool);
    const queue = this.#queues.get(key) ?? [];
    this.#queues.set(key, queue);
    const { promise, resolve } = Promise.withResolvers<T | undefined>();
    let trying = false;
    let done = false;
    const finish = (answer: T | undefined) => {
      if (done) return;
      done = true;
      const index = queue.indexOf(waiter);
      if (index >= 0) queue.splice(index, 1);
      this.#count--;
      if (queue.length === 0) this.#queues.delete(key);
      request.signal?.removeEventListener("abort", onAbort);
      resolve(answer);
      // The next in line may find a seat (more may be free), or must now
      // watch the clock in this one's place.
      queue[0]?.wake();
      this.#schedule();
    };
    const waiter: Waiter = {
      until: request.until,
      giveUp: () => finish(undefined),
      wake: () => {
        if (done || trying) return;
        if (this.#options.now() >= request.until) return finish(undefined);
        trying = true;
        request.attempt().then(
          (answer) => {
            trying = false;
            if (answer !== undefined) finish(answer);
          },
          // A failed try (a database error) is not a seat: wait on.
          () => (trying = false),
        );
      },
    };
    const onAbort = () => finish(undefined);
    if (request.signal?.aborted) return Promise.resolve(undefined);
    request.signal?.addEventListener("abort", onAbort);
    queue.push(waiter);
    this.#count++;
    this.#schedule();
    // The head tries now: this waiter if first, else the one before it all.
    queue[0].wake();
    return promise;
  }

  /** A seat of `pool` may be free: its first waiter tries. */
  notify(pool: string | null): void {
    this.#queues.get(poolKey(pool))?.[0]?.wake();
  }

  /** A seat of any pool may be free (the reaper ran): every first waiter tries. */
  notifyAll(): void {
    for (const queue of this.#queues.values()) queue[0]?.wake();
  }

  /** Ends every wait (the server is shutting down) and refuses new ones. */
  close(): void {
    this.#closed = true;
    for (const queue of [...this.#queues.values()]) {
      for (const waiter of [...queue]) waiter.giveUp();
    }
    this.#schedule();
  }

  /** Polls while anyone waits: the heads try, and waits whose time is up end. */
  #schedule(): void {
    if (this.#count > 0 && this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), this.#options.pollMs ?? 250);
    } else if (this.#count === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #tick(): void {
    const now = this.#options.now();
    for (const queue of [...this.#queues.values()]) {
      for (const waiter of queue.filter((waiter) => now >= waiter.until)) waiter.giveUp();
    }
    this.notifyAll();
  }
}

function poolKey(pool: string | null): PoolKey {
  // Pool names never hold NUL (they come from the command line).
  return pool === null ? "\u0000" : `=${pool}`;
}

/**
 * The `wait` query parameter of a request URL, in whole seconds (0: absent,
 * no wait): a number of seconds, or a duration as the flags take them (`30s`,
 * `2m`, `1m30s`); `undefined` when it is malformed, repeated or over
 * `maxSeconds`.
 */
export function waitSeconds(url: string, maxSeconds: number): number | undefined {
  const query = url.indexOf("?");
  if (query < 0) return 0;
  const values = new URLSearchParams(url.slice(query + 1).split("#")[0]).getAll("wait");
  if (values.length === 0) return 0;
  if (values.length > 1) return undefined;
  let seconds: number;
  if (/^\d+$/.test(values[0])) seconds = Number(values[0]);
  else {
    try {
      seconds = Math.ceil(parseDuration(values[0]) / 1000);
    } catch {
      return undefined;
    }
  }
  return seconds <= maxSeconds ? seconds : undefined;
}
