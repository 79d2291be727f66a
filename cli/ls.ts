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
import type { CommandContext } from "./context.ts";
import { flagOption, FLAGS, flagValue, wantsPlain } from "./flags.ts";

/** Builds the `ls` command. */
export function lsCommand(context: CommandContext): Command {
  return new Command("ls")
    .description("list the licenses in the pool, with lease state and stats")
    .addOption(flagOption(FLAGS.ls.pool))
    .addOption(flagOption(FLAGS.ls.plain))
    .addOption(flagOption(FLAGS.ls.json))
    .action(async (options: { pool?: string; plain?: boolean; json?: boolean }) => {
      const { io } = context;
      const pool = flagValue(FLAGS.ls.pool, options.pool, io.env);
      const now = context.now();
      const store = await context.openStore();
      let licenses;
      try {
        licenses = await listLicenses(store, { pool });
      } finally {
        await store.close();
      }
      if (options.json) {
        io.stdout(JSON.stringify(licenses.map((license) => licenseJson(license, now))) + "\n");
      } else if (licenses.length === 0) {
        io.stdout("license pool is empty\n");
      } else {
        const table = {
          columns: LICENSE_COLUMNS,
          rows: licenses.map((license) => licenseRow(license, now)),
        };
        io.stdout(wantsPlain(options.plain, io) ? renderPlainTable(table) : renderBoxTable(table));
      }
    });
}
