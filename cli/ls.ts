/**
 * `relay ls`: list licenses with their lease state and the validity of their
 * files; `--expiring` lists only those that need renewing.
 *
 * @module
 */

import { Command } from "commander";
import { parseDuration } from "../lib/config.ts";
import { DEFAULT_EXPIRY_WARNING_SECONDS } from "../lib/expiry.ts";
import { listLicenses } from "../lib/licenses.ts";
import { licenseJson, licenseTable, renderBoxTable, renderPlainTable } from "./output.ts";
import type { CommandContext } from "./context.ts";
import { flagOption, FLAGS, flagValue, wantsPlain } from "./flags.ts";

/** The options of `relay ls` as commander parses them. */
interface LsOptions {
  pool?: string;
  plain?: boolean;
  json?: boolean;
  expiring?: string;
}

/** Builds the `ls` command. */
export function lsCommand(context: CommandContext): Command {
  return new Command("ls")
    .description("list the licenses in the pool, with lease state and stats")
    .addOption(flagOption(FLAGS.ls.pool))
    .addOption(flagOption(FLAGS.ls.plain))
    .addOption(flagOption(FLAGS.ls.json))
    .addOption(flagOption(FLAGS.ls.expiring))
    .action(async (options: LsOptions) => {
      const { io } = context;
      const pool = flagValue(FLAGS.ls.pool, options.pool, io.env);
      // A file is `expiring` within the --expiring window, else within 7 days.
      const within = options.expiring === undefined
        ? DEFAULT_EXPIRY_WARNING_SECONDS
        : Math.floor(parseDuration(options.expiring) / 1000);
      const now = context.now();
      const expiringBy = options.expiring === undefined ? undefined : now + within;
      const store = await context.openStore();
      let licenses;
      try {
        licenses = await listLicenses(store, { pool, expiringBy });
      } finally {
        await store.close();
      }
      const at = { now, within };
      if (options.json) {
        io.stdout(JSON.stringify(licenses.map((license) => licenseJson(license, at))) + "\n");
      } else if (licenses.length === 0) {
        io.stdout(
          options.expiring === undefined
            ? "license pool is empty\n"
            : `no license expires within ${options.expiring}\n`,
        );
      } else {
        const table = licenseTable(licenses, at);
        io.stdout(wantsPlain(options.plain, io) ? renderPlainTable(table) : renderBoxTable(table));
      }
    });
}
