/**
 * How transactions run on one SQLite connection: one at a time, in arrival
 * order, and (with group commit) those that arrive together in one
 * `BEGIN IMMEDIATE` … `COMMIT`, so they share one fsync.
 *
 * `node:sqlite` is synchronous and a connection has one transaction at a
 * time, so every body runs behind the one before it. A body is async only to
 * fit the engine-neutral interface: it awaits nothing but its own
 * statements, so the queue never waits on I/O while it holds the connection.
 *
 * With group commit each body is a savepoint of the group's transaction, so a
 * failing body undoes only itself, and no caller learns its result before the
 * group has committed: nothing is acknowledged that a crash could lose. A lone
 * transaction waits only for the end of the current event-loop turn.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import { setImmediate } from "node:timers";
import { DatabaseError } from "../../errors.ts";
import type { Tx } from "../store.ts";
import { asDatabaseError, databaseFailure } from "./errors.ts";

/** Largest group: bounds the time one commit holds the write lock. */
export const MAX_GROUP = 256;

/**
 * What a transaction may do: write and wait for the disk (`durable`), write
 * without waiting for the disk (`relaxed`), or only read.
 */
export type TransactionKind = "durable" | "relaxed" | "read";

interface Job {
  kind: TransactionKind;
  fn: (tx: Tx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Options of {@link TransactionQueue}. */
export interface TransactionQueueOptions {
  /** The database file, for messages. */
  path: string;
  /** Run transactions that arrive together as one group (see the module doc). */
  groupCommit: boolean;
  /** Called after each commit of a transaction that may have written. */
  onCommit?: () => void;
}

/** Runs the transactions of one connection, one at a time. */
export class TransactionQueue {
  readonly #db: DatabaseSync;
  readonly #tx: Tx;
  readonly #options: TransactionQueueOptions;
  readonly #jobs: Job[] = [];
  #scheduled = false;
  #running = false;
  #idle: (() => void)[] = [];
  #writeFailure: string | null = null;

  /** Transactions on `db`, whose bodies all receive `tx`. */
  constructor(db: DatabaseSync, tx: Tx, options: TransactionQueueOptions) {
    this.#db = db;
    this.#tx = tx;
    this.#options = options;
  }

  /** Queues `fn` as a transaction of `kind`; resolves with its result after the commit. */
  run<T>(kind: TransactionKind, fn: (tx: Tx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#jobs.push({ kind, fn, resolve: resolve as (value: unknown) => void, reject });
      this.#schedule();
    });
  }

  /**
   * Why the last batch that may write failed in the database (see
   * `databaseFailure`); null once one commits without such a failure.
   */
  get writeFailure(): string | null {
    return this.#writeFailure;
  }

  /** Resolves once every queued transaction has finished. */
  drained(): Promise<void> {
    if (!this.#running && this.#jobs.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #schedule(): void {
    if (this.#scheduled || this.#running) return;
    this.#scheduled = true;
    // After the requests already read from the sockets have queued theirs;
    // setImmediate waits microseconds where setTimeout(0) waits milliseconds.
    // A batch then runs in one macrotask (its bodies await only statements), so
    // batches of two stores on one thread (tests, in-process commands) never
    // interleave: one never waits on a lock that the other holds.
    setImmediate(() => this.#flush());
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    this.#running = true;
    try {
      const kind = this.#jobs[0].kind;
      let count = 1;
      if (this.#options.groupCommit) {
        while (
          count < this.#jobs.length && count < MAX_GROUP && this.#jobs[count].kind === kind
        ) count++;
      }
      await this.#runBatch(kind, this.#jobs.splice(0, count));
    } finally {
      this.#running = false;
      if (this.#jobs.length > 0) {
        this.#schedule();
      } else {
        for (const resolve of this.#idle.splice(0)) resolve();
      }
    }
  }

  /** One transaction around `batch`; each body a savepoint unless it is alone without grouping. */
  async #runBatch(kind: TransactionKind, batch: Job[]): Promise<void> {
    const db = this.#db;
    let outcomes: Outcome[];
    const restore = kind === "relaxed" ? this.#skipFsync() : undefined;
    try {
      db.exec(kind === "read" ? "BEGIN" : "BEGIN IMMEDIATE");
      outcomes = await this.#runBodies(batch);
      if (!this.#options.groupCommit && !outcomes[0].ok) {
        rollBack(db);
      } else {
        db.exec("COMMIT");
        if (kind !== "read") this.#options.onCommit?.();
      }
    } catch (error) {
      // The transaction failed as a whole: no body of the batch took effect.
      rollBack(db);
      const failure = asDatabaseError(error, this.#options.path);
      if (kind !== "read") this.#writeFailure = databaseFailure(failure);
      for (const job of batch) job.reject(failure);
      return;
    } finally {
      restore?.();
    }
    if (kind !== "read") {
      // The first body the database failed, if any: later ones of a group
      // rolled back by SQLite only report that.
      this.#writeFailure = null;
      for (const outcome of outcomes) {
        if (!outcome.ok) this.#writeFailure ??= databaseFailure(outcome.error);
      }
    }
    batch.forEach((job, i) => {
      const outcome = outcomes[i];
      if (outcome.ok) job.resolve(outcome.value);
      else job.reject(outcome.error);
    });
  }

  /** Runs each body, as a savepoint with group commit; throws if a savepoint itself fails. */
  async #runBodies(batch: Job[]): Promise<Outcome[]> {
    const db = this.#db;
    if (!this.#options.groupCommit) return [await this.#attempt(batch[0])];
    const outcomes: Outcome[] = [];
    for (const job of batch) {
      if (!db.isTransaction) {
        // SQLite rolled the group back (e.g. a full disk): nothing may commit alone.
        outcomes.push({
          ok: false,
          error: new DatabaseError(
            `Database "${this.#options.path}" failed: the transaction was rolled back`,
          ),
        });
        continue;
      }
      db.exec("SAVEPOINT tx");
      const outcome = await this.#attempt(job);
      if (db.isTransaction) db.exec(outcome.ok ? "RELEASE tx" : "ROLLBACK TO tx; RELEASE tx");
      outcomes.push(outcome);
    }
    return outcomes;
  }

  async #attempt(job: Job): Promise<Outcome> {
    try {
      return { ok: true, value: await job.fn(this.#tx) };
    } catch (error) {
      return { ok: false, error: asDatabaseError(error, this.#options.path) };
    }
  }

  /**
   * Sets `synchronous = NORMAL` until the returned function restores the
   * configured level: a commit in between is not fsynced on its own. The next
   * durable commit fsyncs it too (the WAL is one file, appended in order), so
   * a power loss can drop it only with everything after it; a crash of the
   * process loses nothing.
   */
  #skipFsync(): () => void {
    const level = Number(this.#db.prepare("PRAGMA synchronous").get()?.synchronous);
    if (level <= 1) return () => {};
    this.#db.exec("PRAGMA synchronous = NORMAL");
    return () => this.#db.exec(`PRAGMA synchronous = ${level}`);
  }
}

/** Rolls back the open transaction, if SQLite has not already (e.g. on a full disk). */
function rollBack(db: DatabaseSync): void {
  try {
    if (db.isTransaction) db.exec("ROLLBACK");
  } catch {
    // The connection is unusable; the error that matters is reported already.
  }
}
