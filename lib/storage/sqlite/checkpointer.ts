/**
 * Background checkpoints for a long-running SQLite store (`relay serve`). In WAL mode every commit appends
 * pages to the WAL, and SQLite copies them back into the database file (and
 * fsyncs it) inside whichever commit crosses 1,000 pages: tens of
 * milliseconds on the server's one JavaScript thread while a reap or a burst
 * of claims writes many pages, during which no request is answered.
 *
 * The checkpointer does that copy on a worker thread with its own connection,
 * after each commit, one checkpoint at a time. A PASSIVE checkpoint
 * never takes the write lock, so it cannot delay a request. While it runs,
 * the server's own connection checkpoints only past
 * {@link BACKSTOP_AUTOCHECKPOINT} pages (the WAL restarts from its start only
 * when a commit finds it fully copied, which a busy server may not allow for
 * a while); if the worker stops, SQLite's default comes back. Durability does
 * not depend on any of this: a commit is durable once its WAL frames are.
 *
 * @module
 */

import type { Logger } from "../../logger.ts";
import type { CheckpointResult } from "./wal_checkpointer.ts";

/** SQLite's default `wal_autocheckpoint`, in pages. */
export const DEFAULT_AUTOCHECKPOINT = 1000;

/** The server connection's own checkpoint threshold while the worker runs, in pages. */
export const BACKSTOP_AUTOCHECKPOINT = 10_000;

/** Messages to the worker. */
export type CheckpointerRequest =
  | { type: "open"; path: string }
  | { type: "checkpoint"; seq: number }
  | { type: "close" };

/** Messages from the worker; `seq`: the newest request the run covered. */
export type CheckpointerReport =
  | { type: "ready" }
  | ({ type: "done"; seq: number } & CheckpointResult)
  | { type: "failed"; seq: number; message: string }
  | { type: "closed" };

/** Options of {@link startCheckpointer}. */
export interface CheckpointerOptions {
  /** The store's database file (WAL mode). */
  path: string;
  /** Sets the store connection's own `wal_autocheckpoint`, in pages. */
  setAutoCheckpoint: (pages: number) => void;
  logger: Logger;
}

/** A running checkpointer. */
export interface Checkpointer {
  /** Asks for a checkpoint: the store calls it after each commit. */
  request(): void;
  /**
   * Resolves once a checkpoint has run after every commit so far, with its
   * result (null if none ran, e.g. the worker has stopped).
   */
  settled(): Promise<CheckpointResult | null>;
  /** Closes the worker's connection and ends the thread; call before closing the store. */
  stop(): Promise<void>;
}

/**
 * Starts the worker thread, which runs a checkpoint after each
 * {@link Checkpointer.request}; requests made before it is ready are covered
 * by its first.
 */
export function startCheckpointer(options: CheckpointerOptions): Checkpointer {
  const worker = new Worker(new URL("./checkpoint_worker.ts", import.meta.url), {
    type: "module",
    name: "relay-checkpointer",
  });
  let alive = true;
  let requested = 0;
  let covered = 0;
  let last: CheckpointResult | null = null;
  let lastError: string | null = null;
  let waiters: { seq: number; resolve: (result: CheckpointResult | null) => void }[] = [];
  let onClosed: (() => void) | null = null;

  function settle(all: boolean): void {
    const ready = waiters.filter((waiter) => all || waiter.seq <= covered);
    waiters = waiters.filter((waiter) => !ready.includes(waiter));
    for (const { resolve } of ready) resolve(last);
  }

  function request(): void {
    if (!alive) return;
    requested++;
    worker.postMessage({ type: "checkpoint", seq: requested } satisfies CheckpointerRequest);
  }

  function gone(): void {
    if (!alive) return;
    alive = false;
    worker.terminate();
    options.setAutoCheckpoint(DEFAULT_AUTOCHECKPOINT);
    settle(true);
    onClosed?.();
  }

  worker.onmessage = (event: MessageEvent<CheckpointerReport>) => {
    const report = event.data;
    switch (report.type) {
      case "ready":
        options.setAutoCheckpoint(BACKSTOP_AUTOCHECKPOINT);
        return;
      case "closed":
        gone();
        return;
      case "done":
        last = { walFrames: report.walFrames, checkpointed: report.checkpointed };
        lastError = null;
        break;
      case "failed":
        // Logged once per distinct failure: a full disk fails every checkpoint.
        if (report.message !== lastError) {
          options.logger.warn("background checkpoint failed; SQLite's own checkpoints continue", {
            error: report.message,
          });
        }
        lastError = report.message;
        break;
    }
    covered = Math.max(covered, report.seq);
    settle(false);
  };
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault();
    options.logger.warn("background checkpointer stopped; SQLite's own checkpoints continue", {
      error: event.message,
    });
    gone();
  };
  worker.postMessage({ type: "open", path: options.path } satisfies CheckpointerRequest);

  return {
    request,
    settled() {
      if (!alive || covered >= requested) return Promise.resolve(last);
      return new Promise((resolve) => waiters.push({ seq: requested, resolve }));
    },
    stop() {
      if (!alive) return Promise.resolve();
      const closed = new Promise<void>((resolve) => (onClosed = resolve));
      worker.postMessage({ type: "close" } satisfies CheckpointerRequest);
      return closed;
    },
  };
}
