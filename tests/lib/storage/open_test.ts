/**
 * `lib/storage/open.ts`: backups of a server engine's database are sent to
 * that engine's own tools, with a clear error; nothing touches a file.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseError, DatabaseUnavailableError } from "../../../lib/errors.ts";
import { backupDatabase, databaseEngine, inspectDatabase } from "../../../lib/storage/open.ts";

Deno.test("databaseEngine() tells PostgreSQL URLs from SQLite paths", () => {
  assert.equal(databaseEngine("postgres://relay@db/relay"), "postgres");
  assert.equal(databaseEngine("postgresql://db/relay"), "postgres");
  assert.equal(databaseEngine("./relay.sqlite"), "sqlite");
  assert.equal(databaseEngine("postgres.sqlite"), "sqlite");
});

Deno.test("backupDatabase() refuses a PostgreSQL database, naming its tools; inspectDatabase() connects to it", async () => {
  await assert.rejects(
    backupDatabase("postgres://relay@db/relay", "copy.sqlite", { force: false }),
    (error) => error instanceof DatabaseError && /use pg_dump/.test(error.message),
  );
  // No SQLite file of that name is made: the server is asked, and is out of reach.
  await assert.rejects(
    inspectDatabase("postgres://relay@127.0.0.1:1/relay", { now: 0, expiringBy: 0 }),
    (error) => error instanceof DatabaseUnavailableError,
  );
});
