/**
 * `relay del`: delete licenses from the pool, all or nothing.
 *
 * @module
 */

import { Command } from "commander";
import { UsageError } from "../lib/errors.ts";
import { removeLicenses } from "../lib/licenses.ts";
import { collectList, type CommandContext } from "./program.ts";

/** Builds the `del` command. */
export function delCommand(context: CommandContext): Command {
  return new Command("del")
    .description("delete licenses from the pool (all or nothing)")
    .requiredOption(
      "--license <id>",
      "id of a license to delete; repeat it or separate ids with commas",
      collectList,
    )
    .option("--force", "also delete licenses that a node is leasing right now")
    .action(async (options: { license: string[]; force?: boolean }) => {
      if (options.license.length === 0) {
        throw new UsageError("--license needs at least one license id");
      }
      const store = await context.openStore();
      try {
        const removed = await removeLicenses(store, options.license, {
          force: options.force === true,
          now: context.now(),
        });
        const logger = context.logger("stderr");
        for (const license of removed) {
          logger.info("license deleted", {
            id: license.guid,
            pool: license.poolName,
            leased_by: license.nodeFingerprint,
          });
        }
        context.io.stdout(
          removed.map((license) => `license deleted successfully: ${license.guid}\n`).join(""),
        );
      } finally {
        await store.close();
      }
    });
}
