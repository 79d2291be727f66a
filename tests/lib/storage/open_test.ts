/**
 * `lib/storage/open.ts`: the care functions send a database of a server
 * engine to that engine's own tools, with a clear error, and touch no file.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseError } from "../../../lib/errors.ts";
import { backupDatabase, databaseEngine, inspectDatabase } from "../../../lib/storage/open.ts";

Deno.test("databaseEngine() tells PostgreSQL URLs from SQLite paths", () => {
  assert.equal(databaseEngine("postgres://relay@db/relay"), "postgres");
  assert.equal(databaseEngine("postgresql://db/relay"), "postgres");
  assert.equal(databaseEngine("./relay.sqlite"), "sqlite");
  assert.equal(databaseEngine("postgres.sqlite"), "sqlite");
});

Deno.test("backupDatabase() and inspectDatabase() refuse a PostgreSQL database, naming its tools", async () => {
  await assert.rejects(
    backupDatabase("postgres://relay@db/relay", "copy.sqlite", { force: false }),
    (error) => error instanceof DatabaseError && /use pg_dump/.test(error.message),
  );
  await assert.rejects(
    inspectDatabase("postgres://relay@db/relay", { now: 0, expiringBy: 0 }),
    (error) => error instanceof DatabaseError && /relay doctor/.test(error.message),
  );
});
