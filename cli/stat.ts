/**
 * `relay stat`: one license in full, lease holder included.
 *
 * @module
 */

import { Command } from "commander";
import { DEFAULT_EXPIRY_WARNING_SECONDS } from "../lib/expiry.ts";
import { findLicense } from "../lib/licenses.ts";
import {
  licenseJson,
  licenseTable,
  renderBoxTable,
  renderPlainTable,
  seatsLabel,
} from "./output.ts";
import type { CommandContext } from "./context.ts";
import { flagOption, FLAGS, wantsPlain } from "./flags.ts";

/** Builds the `stat` command. */
export function statCommand(context: CommandContext): Command {
  return new Command("stat")
    .description("show one license in full, with the node that leases it")
    .addOption(flagOption(FLAGS.stat.license))
    .addOption(flagOption(FLAGS.stat.plain))
    .addOption(flagOption(FLAGS.stat.json))
    .action(async (options: { license: string; plain?: boolean; json?: boolean }) => {
      const { io } = context;
      const at = { now: context.now(), within: DEFAULT_EXPIRY_WARNING_SECONDS };
      const store = await context.openStore();
      let license;
      try {
        license = await findLicense(store, options.license);
      } finally {
        await store.close();
      }
      if (options.json) {
        io.stdout(JSON.stringify(licenseJson(license, at)) + "\n");
      } else if (wantsPlain(options.plain, io)) {
        io.stdout(renderPlainTable(licenseTable([license], at)));
      } else {
        // Seats only for a multi-seat license: a single-seat one shows as it always did.
        const { seats: _, seats_used: __, ...single } = licenseJson(license, at);
        const fields = license.seats > 1 ? { ...single, seats: seatsLabel(license) } : single;
        const details = Object.entries(fields).map(([key, value]) => [
          key,
          value === null ? "-" : String(value),
        ]);
        io.stdout(renderBoxTable({ columns: ["field", "value"], rows: details }));
      }
    });
}
