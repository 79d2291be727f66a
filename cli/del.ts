/**
 * `relay del`: delete licenses from the pool, all or nothing.
 *
 * @module
 */

import { Command } from "commander";
import { UsageError } from "../lib/errors.ts";
import { removeLicenses } from "../lib/licenses.ts";
import type { CommandContext } from "./context.ts";
import { flagOption, FLAGS } from "./flags.ts";
import { holderLabel } from "../lib/holders.ts";

/** Builds the `del` command. */
export function delCommand(context: CommandContext): Command {
  return new Command("del")
    .description("delete licenses from the pool (all or nothing)")
    .addOption(flagOption(FLAGS.del.license))
    .addOption(flagOption(FLAGS.del.force))
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
            leased_by: license.nodeFingerprint === null
              ? null
              : holderLabel(license.nodeFingerprint),
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
