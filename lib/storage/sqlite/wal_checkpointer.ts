/**
 * The checkpointer's own connection to a WAL-mode database.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { DatabaseError } from "../../errors.ts";
import { asDatabaseError, reason } from "./errors.ts";

/** What one {@link WalCheckpointer.checkpoint} did, in WAL frames (pages). */
export interface CheckpointResult {
  /** Frames in the WAL. */
  walFrames: number;
  /** Frames of it now copied into the database file. */
  checkpointed: number;
}

/**
 * A second connection to a WAL-mode database that only checkpoints: it copies
 * committed pages from the WAL into the database file and fsyncs it, work that
 * SQLite otherwise does inside a commit on the writer's thread. A PASSIVE
 * checkpoint never takes the write lock, so it runs beside the writer (in
 * `relay serve`, on a worker thread; see `./checkpointer.ts`).
 */
export class WalCheckpointer {
  readonly #db: DatabaseSync;
  readonly #statement: StatementSync;
  readonly #path: string;

  /**
   * Opens a connection to the existing database at `path`.
   *
   * @throws {DatabaseError} it cannot be opened.
   */
  constructor(path: string) {
    this.#path = path;
    try {
      this.#db = new DatabaseSync(path);
      this.#db.exec("PRAGMA busy_timeout = 5000");
      // Sync the database file as the writer's own checkpoints would.
      this.#db.exec("PRAGMA synchronous = FULL");
      this.#statement = this.#db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
    } catch (error) {
      throw new DatabaseError(`Cannot open database "${path}": ${reason(error)}`, {
        cause: error,
      });
    }
  }

  /** Copies as many committed WAL frames as no reader still needs. */
  checkpoint(): CheckpointResult {
    try {
      const row = this.#statement.get() as { log: number; checkpointed: number };
      return { walFrames: row.log, checkpointed: row.checkpointed };
    } catch (error) {
      throw asDatabaseError(error, this.#path);
    }
  }

  /** Closes the connection. */
  close(): void {
    this.#db.close();
  }
}
