/**
 * The SQLite engine: opens a database file (creating it 0600), applies
 * Relay's pragmas and pending migrations, and serves {@link Store}
 * transactions on one connection.
 *
 * Uses `node:sqlite` (compiled into the Deno binary: no FFI, no native library
 * to ship). Transactions of one process run one at a time
 * (`./transactions.ts`); `BEGIN IMMEDIATE` and a busy timeout serialise them
 * against other processes that share the file.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { DatabaseError, DatabaseTooNewError } from "../../errors.ts";
import type { Logger } from "../../logger.ts";
import type { Store, TransactionOptions, Tx } from "../store.ts";
import { type Checkpointer, startCheckpointer } from "./checkpointer.ts";
import { reason } from "./errors.ts";
import { migrate, schemaState } from "./migrate.ts";
import { SqliteTx } from "./statements.ts";
import { TransactionQueue } from "./transactions.ts";
import type { CheckpointResult } from "./wal_checkpointer.ts";

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /** Current unix time in seconds, recorded with applied migrations. */
  now: number;
  /**
   * Create the database file when it does not exist (default true). False,
   * for commands that only read: a missing file is a {@link DatabaseError}
   * naming it, and no file (nor `-wal`/`-shm`) is created.
   */
  create?: boolean;
  /** Write audit rows (default true); false makes `Tx.audit` a no-op. */
  audit?: boolean;
  /** Extra `PRAGMA key = value` settings, applied after Relay's own. */
  pragmas?: Readonly<Record<string, string>>;
  /** How long to wait for another process's write lock, in ms (default 5000). */
  busyTimeoutMs?: number;
  /**
   * Transactions that arrive together share one commit and one fsync (for a
   * server with many concurrent requests; default false).
   */
  groupCommit?: boolean;
  /**
   * Copy the WAL into the database file on a worker thread instead of inside
   * commits (for a long-running server; default false). Its warnings go to
   * `logger`.
   */
  backgroundCheckpoints?: { logger: Logger };
}

/**
 * An open SQLite database. Create it with {@link openSqliteStore}; close it
 * with {@link SqliteStore.close}.
 */
export class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  readonly #tx: SqliteTx;
  readonly #queue: TransactionQueue;
  readonly #checkpointer: Checkpointer | null;
  readonly #audit: boolean;
  #closed: Promise<void> | null = null;

  /** Use {@link openSqliteStore}: it applies pragmas and migrations first. */
  constructor(db: DatabaseSync, path: string, options: SqliteStoreOptions) {
    this.#db = db;
    this.#audit = options.audit ?? true;
    this.#tx = new SqliteTx(db, { audit: this.#audit });
    this.#checkpointer = options.backgroundCheckpoints && path !== ":memory:"
      ? startCheckpointer({
        path,
        logger: options.backgroundCheckpoints.logger,
        setAutoCheckpoint: (pages) => this.#setAutoCheckpoint(pages),
      })
      : null;
    const checkpointer = this.#checkpointer;
    this.#queue = new TransactionQueue(db, this.#tx, {
      path,
      groupCommit: options.groupCommit ?? false,
      onCommit: checkpointer ? () => checkpointer.request() : undefined,
    });
  }

  get auditEnabled(): boolean {
    return this.#audit;
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    if (this.#closed) return Promise.reject(new Error("The store is closed"));
    return this.#queue.run(options.durable === false ? "relaxed" : "durable", fn);
  }

  read<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error("The store is closed"));
    return this.#queue.run("read", fn);
  }

  writeFailure(): string | null {
    return this.#queue.writeFailure;
  }

  /**
   * Waits for queued transactions, stops the background checkpointer, copies
   * the WAL into the database file (as far as other connections allow) and
   * closes the connection.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#queue.drained();
      await this.#checkpointer?.stop();
      this.#tx.finalize();
      try {
        // PASSIVE: never waits for another process; the last connection to close
        // checkpoints fully and removes the WAL anyway. Best effort: on a full
        // disk the data stays safe in the WAL, and the error that matters has
        // been reported already.
        this.#db.exec("PRAGMA wal_checkpoint(PASSIVE)");
      } catch {
        // Nothing to add.
      }
      this.#db.close();
    })();
    return this.#closed;
  }

  /**
   * Resolves once a background checkpoint has run after every commit so far,
   * with its result (null without background checkpoints, or if none ran).
   */
  checkpointsSettled(): Promise<CheckpointResult | null> {
    return this.#checkpointer?.settled() ?? Promise.resolve(null);
  }

  /** The connection's `wal_autocheckpoint`, in pages. */
  get autoCheckpoint(): number {
    return this.#pragma("wal_autocheckpoint");
  }

  /** The connection's `PRAGMA synchronous` level: 2 (FULL) unless a pragma set another. */
  get synchronous(): number {
    return this.#pragma("synchronous");
  }

  #pragma(name: "wal_autocheckpoint" | "synchronous"): number {
    return Number(this.#db.prepare(`PRAGMA ${name}`).get()?.[name]);
  }

  #setAutoCheckpoint(pages: number): void {
    if (this.#db.isOpen) this.#db.exec(`PRAGMA wal_autocheckpoint = ${Math.trunc(pages)}`);
  }
}

/**
 * Opens (creating if needed, unless `options.create` is false) the SQLite
 * database at `path`, applies pragmas and any pending migrations in one
 * transaction, and returns the store.
 *
 * A new database file is created readable by its owner only (0600); SQLite
 * gives its WAL and SHM files the same mode.
 *
 * @throws {DatabaseError} the file cannot be created or opened (or does not
 *   exist, with `create: false`), is not a SQLite database, or holds tables
 *   that are not Relay's.
 * @throws {DatabaseTooNewError} a newer Relay (or Keygen Relay) wrote it.
 */
export function openSqliteStore(path: string, options: SqliteStoreOptions): SqliteStore {
  const create = options.create ?? true;
  if (path !== ":memory:") {
    if (create) createPrivateFile(path);
    else requireFile(path);
  }
  let db: DatabaseSync;
  try {
    // Under Deno's permissions node:sqlite takes no `file:` URI (`mode=rw`), so
    // only the check above keeps a missing file from being created: a file
    // deleted between the two would come back empty, as with any SQLite client.
    db = new DatabaseSync(path);
  } catch (error) {
    throw new DatabaseError(`Cannot open database "${path}": ${reason(error)}`, {
      cause: error,
    });
  }
  try {
    db.exec(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
    // Refuse a file that is not ours before any pragma writes to it.
    schemaState(db, { path });
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA foreign_keys = ON");
    // FULL: a lease acknowledged to a client survives a power loss, not only a crash.
    db.exec("PRAGMA synchronous = FULL");
    // Savepoints of a group commit journal in memory instead of temp files.
    db.exec("PRAGMA temp_store = MEMORY");
    migrate(db, path, { now: options.now });
    // After the migrations, so that they run under Relay's own settings.
    for (const [key, value] of Object.entries(options.pragmas ?? {})) {
      db.exec(`PRAGMA ${key} = ${value}`);
    }
  } catch (error) {
    db.close();
    if (error instanceof DatabaseError || error instanceof DatabaseTooNewError) throw error;
    throw new DatabaseError(`Cannot use database "${path}": ${reason(error)}`, {
      cause: error,
    });
  }
  return new SqliteStore(db, path, options);
}

/**
 * Refuses a database path where no file exists, naming it.
 *
 * @throws {DatabaseError} no file at `path`, or it cannot be looked at.
 */
export function requireFile(path: string): void {
  try {
    Deno.statSync(path);
  } catch (error) {
    const problem = error instanceof Deno.errors.NotFound ? "no such file" : reason(error);
    throw new DatabaseError(`Cannot open database "${path}": ${problem}`, { cause: error });
  }
}

/** Creates `path` with mode 0600 unless it exists. */
function createPrivateFile(path: string): void {
  try {
    Deno.openSync(path, { createNew: true, write: true, mode: 0o600 }).close();
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return;
    if (error instanceof Deno.errors.NotFound) {
      throw new DatabaseError(
        `Cannot create database "${path}": its folder does not exist`,
        { cause: error },
      );
    }
    throw new DatabaseError(`Cannot create database "${path}": ${reason(error)}`, {
      cause: error,
    });
  }
}
