/**
 * `relay ls`: list licenses with their lease state.
 *
 * @module
 */

import { Command } from "commander";
import { listLicenses } from "../lib/licenses.ts";
import {
  LICENSE_COLUMNS,
  licenseJson,
  licenseRow,
  renderBoxTable,
  renderPlainTable,
} from "./output.ts";
import { type CommandContext, envValue, wantsPlain } from "./program.ts";

/** Builds the `ls` command. */
export function lsCommand(context: CommandContext): Command {
  return new Command("ls")
    .description("list the licenses in the pool, with lease state and stats")
    .option("--pool <name>", "list only this pool's licenses [$RELAY_POOL]")
    .option("--plain", "plain text table, one line per license [$RELAY_PLAIN=1]")
    .option("--json", "JSON array, for scripts")
    .action(async (options: { pool?: string; plain?: boolean; json?: boolean }) => {
      const { io } = context;
      const store = await context.openStore();
      let licenses;
      try {
        licenses = await listLicenses(store, {
          pool: options.pool ?? envValue(io.env, "RELAY_POOL"),
        });
      } finally {
        await store.close();
      }
      if (options.json) {
        io.stdout(JSON.stringify(licenses.map(licenseJson)) + "\n");
      } else if (licenses.length === 0) {
        io.stdout("license pool is empty\n");
      } else {
        const table = { columns: LICENSE_COLUMNS, rows: licenses.map(licenseRow) };
        io.stdout(wantsPlain(options.plain, io) ? renderPlainTable(table) : renderBoxTable(table));
      }
    });
}
