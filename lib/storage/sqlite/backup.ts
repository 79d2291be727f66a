/**
 * A consistent copy of a SQLite database, also while `relay serve` writes to
 * it: SQLite's online backup API copies every page in one step, inside one
 * read transaction, so the copy is the database as of one commit (WAL lets
 * the server keep writing meanwhile).
 *
 * The copy is written to a temporary file beside the target, created with
 * mode 0600 before its first byte, checked (`integrity_check`), synced, and
 * renamed onto the target: nobody else can read it at any moment, and the
 * target is either the old file or the whole new copy.
 *
 * @module
 */

import { backup, DatabaseSync } from "node:sqlite";
import { basename, dirname, resolve } from "node:path";
import { BackupError, DatabaseError, UsageError } from "../../errors.ts";
import type { BackupResult } from "../store.ts";
import { reason } from "./errors.ts";
import { openQueryOnly } from "./query_only.ts";

/** Options of {@link backupSqlite}. */
export interface SqliteBackupOptions {
  /** Replace a target file that exists and is not empty. */
  force: boolean;
}

/**
 * Copies the SQLite database at `source` to `target`.
 *
 * @throws {DatabaseError} `source` does not exist or cannot be read.
 * @throws {UsageError} `target` is the database itself (or its `-wal`,
 *   `-shm` or `-journal` file).
 * @throws {BackupError} `target` exists, is not empty and `force` is false;
 *   is a folder; its folder is missing; or writing or checking the copy failed.
 */
export async function backupSqlite(
  source: string,
  target: string,
  options: SqliteBackupOptions,
): Promise<BackupResult> {
  const db = openQueryOnly(source);
  let temp: string | undefined;
  try {
    refuseSameFile(source, target);
    checkTarget(target, options.force);
    temp = createTempBeside(target);
    try {
      // One step (-1: every page): the copy never restarts because the server wrote.
      await backup(db, temp, { rate: -1 });
    } catch (error) {
      throw new DatabaseError(`Cannot back up database "${source}": ${reason(error)}`, {
        cause: error,
      });
    } finally {
      db.close();
    }
    const { licenses, schemaVersion } = checkCopy(temp, target);
    syncFile(temp, target);
    // The target may have appeared meanwhile: look again right before replacing it.
    checkTarget(target, options.force);
    try {
      Deno.renameSync(temp, target);
    } catch (error) {
      throw new BackupError(`Cannot write backup "${target}": ${reason(error)}`, { cause: error });
    }
    temp = undefined;
    syncFolder(target);
    return { bytes: Deno.statSync(target).size, licenses, schemaVersion };
  } finally {
    if (db.isOpen) db.close();
    if (temp !== undefined) removeTemp(temp);
  }
}

/** Refuses a target that is the database, or one of its companion files. */
function refuseSameFile(source: string, target: string): void {
  const database = canonical(source);
  const names = [database, `${database}-wal`, `${database}-shm`, `${database}-journal`];
  let same = names.includes(canonical(target));
  try {
    const [a, b] = [Deno.statSync(source), Deno.statSync(target)];
    // A hard link, or another path to the same file.
    same ||= a.dev === b.dev && a.ino !== null && a.ino === b.ino;
  } catch {
    // No target yet: the names decide.
  }
  if (same) {
    throw new UsageError(
      `Cannot back up database "${source}" onto itself; give --to another file`,
    );
  }
}

/**
 * `path` with its folder's links resolved (and its own, if it exists), so two
 * spellings of one file compare equal.
 */
function canonical(path: string): string {
  try {
    return Deno.realPathSync(path);
  } catch {
    try {
      return `${Deno.realPathSync(dirname(path))}/${basename(path)}`;
    } catch {
      return resolve(path);
    }
  }
}

/** Refuses a target that is a folder, or a file with content unless `force`. */
function checkTarget(target: string, force: boolean): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(target);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw new BackupError(`Cannot write backup "${target}": ${reason(error)}`, { cause: error });
  }
  if (info.isDirectory) {
    throw new BackupError(`Cannot write backup "${target}": it is a folder`);
  }
  if (info.size > 0 && !force) {
    throw new BackupError(
      `Backup "${target}" exists and is not empty; pass --force to replace it`,
    );
  }
}

/** Creates an empty file with mode 0600 in the target's folder and returns its path. */
function createTempBeside(target: string): string {
  const suffix = crypto.getRandomValues(new Uint32Array(2)).join("");
  const temp = `${dirname(target)}/.${basename(target)}.${suffix}.tmp`;
  try {
    Deno.openSync(temp, { createNew: true, write: true, mode: 0o600 }).close();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new BackupError(`Cannot write backup "${target}": its folder does not exist`, {
        cause: error,
      });
    }
    throw new BackupError(`Cannot write backup "${target}": ${reason(error)}`, { cause: error });
  }
  return temp;
}

/**
 * Checks the copy at `temp` (`integrity_check`), makes it one self-contained
 * file (rollback journal instead of WAL: Relay switches it back when it opens
 * it), and reads its license count and schema version.
 */
function checkCopy(temp: string, target: string): { licenses: number; schemaVersion: number } {
  let copy: DatabaseSync | undefined;
  try {
    copy = new DatabaseSync(temp);
    copy.exec("PRAGMA journal_mode = DELETE");
    const problems = copy.prepare("PRAGMA integrity_check(5)").all()
      .map((row) => String(row.integrity_check));
    if (problems.join() !== "ok") {
      throw new BackupError(
        `Backup "${target}" failed its integrity check (${
          problems.join("; ")
        }); nothing was written`,
      );
    }
    const tables = new Set(
      copy.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()
        .map((row) => String(row.name)),
    );
    // A multi-seat license is one license: its seat rows (migration 11) do not count.
    const seatRows = tables.has("licenses") &&
      copy.prepare("SELECT 1 FROM pragma_table_info('licenses') WHERE name = 'seat_of'").get();
    const licenses = tables.has("licenses")
      ? Number(
        copy.prepare(
          `SELECT count(*) AS n FROM licenses${seatRows ? " WHERE seat_of IS NULL" : ""}`,
        ).get()?.n,
      )
      : 0;
    const schemaVersion = tables.has("relay_migrations")
      ? Number(copy.prepare("SELECT max(version) AS v FROM relay_migrations").get()?.v ?? 0)
      : 0;
    return { licenses, schemaVersion };
  } catch (error) {
    if (error instanceof BackupError) throw error;
    throw new BackupError(`Cannot write backup "${target}": ${reason(error)}`, { cause: error });
  } finally {
    copy?.close();
  }
}

/** Flushes the copy to the disk before it replaces the target. */
function syncFile(temp: string, target: string): void {
  try {
    using file = Deno.openSync(temp, { read: true, write: true });
    file.syncSync();
  } catch (error) {
    throw new BackupError(`Cannot write backup "${target}": ${reason(error)}`, { cause: error });
  }
}

/**
 * Flushes the rename to the disk, where the system allows it (Linux does;
 * some systems cannot open a folder): best effort, the copy itself is whole.
 */
function syncFolder(target: string): void {
  try {
    using folder = Deno.openSync(dirname(target), { read: true });
    folder.syncSync();
  } catch {
    // The rename stands; only its durability across a power loss is less certain.
  }
}

/** Removes the temporary copy and the journal SQLite may have left beside it. */
function removeTemp(temp: string): void {
  for (const path of [temp, `${temp}-journal`, `${temp}-wal`, `${temp}-shm`]) {
    try {
      Deno.removeSync(path);
    } catch {
      // Not there, or already gone.
    }
  }
}
