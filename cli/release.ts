/**
 * `relay release`: end a lease now, as FlexNet's `lmremove` or RLM's
 * `rlmremove` do: the seat nobody can free otherwise (a node that died
 * without releasing, under a long `--ttl` or `--no-heartbeats`).
 *
 * @module
 */

import { Command } from "commander";
import { UsageError } from "../lib/errors.ts";
import { releaseLease, type ReleaseTarget } from "../lib/operator_release.ts";
import type { CommandContext } from "./context.ts";
import { flagOption, FLAGS } from "./flags.ts";
import { formatTime } from "./output.ts";
import { holderLabel } from "../lib/holders.ts";

/** The options of `relay release` as commander parses them. */
interface ReleaseOptions {
  node?: string;
  user?: string;
  license?: string;
  pool?: string;
}

/** Builds the `release` command. */
export function releaseCommand(context: CommandContext): Command {
  return new Command("release")
    .description("end a lease now: the license is free, the node's next heartbeat is a new claim")
    .addOption(flagOption(FLAGS.release.node))
    .addOption(flagOption(FLAGS.release.user))
    .addOption(flagOption(FLAGS.release.license))
    .addOption(flagOption(FLAGS.release.pool))
    .action(async (options: ReleaseOptions) => {
      const target = releaseTarget(options);
      const store = await context.openStore();
      let results;
      try {
        results = await releaseLease(store, target, { pool: options.pool, now: context.now() });
      } finally {
        await store.close();
      }
      // One line per lease ended: several for a multi-seat license.
      context.io.stdout(
        results.map(({ kind, lease }) => {
          // `node render-3`, or `user alice@example.com`.
          const label = holderLabel(lease.nodeFingerprint);
          const holder = label === lease.nodeFingerprint ? `node ${label}` : label;
          const pool = lease.poolName === null ? "" : ` in pool ${lease.poolName}`;
          return kind === "released"
            ? `lease released: license ${lease.licenseGuid}${pool}, ${holder}\n`
            : `lease had expired at ${formatTime(lease.leaseExpiresAt)} and was not reaped yet; ` +
              `ended it as the reaper would: license ${lease.licenseGuid}${pool}, ${holder}\n`;
        }).join(""),
      );
    });
}

/** `--node`, `--user` or `--license`: exactly one of them. */
function releaseTarget(options: ReleaseOptions): ReleaseTarget {
  const given = [options.node, options.user, options.license].filter((x) => x !== undefined);
  if (given.length > 1) throw new UsageError("Give one of --node, --user or --license");
  if (options.node !== undefined) return { node: options.node };
  if (options.user !== undefined) return { user: options.user };
  if (options.license !== undefined) return { license: options.license };
  throw new UsageError(
    "Give the lease to end: --node <fingerprint>, --user <email> or --license <id>",
  );
}
