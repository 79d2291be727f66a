/**
 * Helpers of the storage tests.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";

/**
 * Runs `sql` on a copy of the database file alone (in `dir`), as if its WAL
 * were lost; returns the first column of each row.
 */
export function inMainFile(dir: string, path: string, sql: string): unknown[] {
  const copy = `${dir}/main-file-only.sqlite`;
  Deno.copyFileSync(path, copy);
  const db = new DatabaseSync(copy, { readOnly: true });
  try {
    return db.prepare(sql).all().map((row) => Object.values(row)[0]);
  } finally {
    db.close();
  }
}
