/**
 * `relay stat`: one license in full, lease holder included.
 *
 * @module
 */

import { Command } from "commander";
import { findLicense } from "../lib/licenses.ts";
import {
  LICENSE_COLUMNS,
  licenseJson,
  licenseRow,
  renderBoxTable,
  renderPlainTable,
} from "./output.ts";
import { type CommandContext, wantsPlain } from "./program.ts";

/** Builds the `stat` command. */
export function statCommand(context: CommandContext): Command {
  return new Command("stat")
    .description("show one license in full, with the node that leases it")
    .requiredOption("--license <id>", "id of the license")
    .option("--plain", "plain text table [$RELAY_PLAIN=1]")
    .option("--json", "JSON object, for scripts")
    .action(async (options: { license: string; plain?: boolean; json?: boolean }) => {
      const { io } = context;
      const store = await context.openStore();
      let license;
      try {
        license = await findLicense(store, options.license);
      } finally {
        await store.close();
      }
      if (options.json) {
        io.stdout(JSON.stringify(licenseJson(license)) + "\n");
      } else if (wantsPlain(options.plain, io)) {
        io.stdout(renderPlainTable({ columns: LICENSE_COLUMNS, rows: [licenseRow(license)] }));
      } else {
        const details = Object.entries(licenseJson(license)).map(([key, value]) => [
          key,
          value === null ? "-" : String(value),
        ]);
        io.stdout(renderBoxTable({ columns: ["field", "value"], rows: details }));
      }
    });
}
