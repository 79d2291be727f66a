/**
 * `relay backup`: a consistent copy of the database, taken while `relay serve`
 * runs and writes, readable by its owner only.
 *
 * @module
 */

import { Command } from "commander";
import { DatabaseError, UsageError } from "../lib/errors.ts";
import { backupDatabase } from "../lib/storage/open.ts";
import type { CommandContext } from "./context.ts";
import { isPostgresUrl } from "./database.ts";
import { flagOption, FLAGS } from "./flags.ts";

/** Builds the `backup` command. */
export function backupCommand(context: CommandContext): Command {
  return new Command("backup")
    .description(
      "copy the database to a file, consistently, also while relay serve runs (no sqlite3 needed)",
    )
    .addOption(flagOption(FLAGS.backup.to))
    .addOption(flagOption(FLAGS.backup.force))
    .action(async (options: { to: string; force?: boolean }) => {
      if (options.to.trim() === "") throw new UsageError("--to needs a file path");
      const { database } = context.config();
      if (isPostgresUrl(database)) {
        throw new DatabaseError(
          `Cannot back up the PostgreSQL database ${context.databaseName()} with relay backup; use pg_dump (or your server's own backups)`,
        );
      }
      const result = await backupDatabase(database, context.path(options.to), {
        force: options.force === true,
      });
      const licenses = result.licenses === 1 ? "1 license" : `${result.licenses} licenses`;
      context.io.stdout(
        `backup written: ${options.to} (${result.bytes} bytes, ${licenses}, schema version ${result.schemaVersion})\n`,
      );
    });
}
