/**
 * `relay migrate`: copies a Relay database into another, a SQLite file into
 * PostgreSQL or back (or one engine to itself), with every pool, node,
 * license, lease and audit record.
 *
 * @module
 */

import { Command } from "commander";
import { UsageError } from "../lib/errors.ts";
import { copyDatabase, type CopyEnd, type CopyResult } from "../lib/storage/copy.ts";
import type { CommandContext } from "./context.ts";
import { databaseLocation } from "./database.ts";
import { flagOption, FLAGS } from "./flags.ts";

const EXAMPLE = `
Examples:
  # SQLite to PostgreSQL (the password from PGPASSWORD or --database-password-file)
  relay migrate --from ./relay.sqlite --to postgres://relay@db.internal:5432/relay

  # and back
  relay migrate --from postgres://relay@db.internal:5432/relay --to ./relay-copy.sqlite

The source is read in one snapshot (relay serve may go on running on it) and
never changed. The target gets this Relay's schema, then every pool, node,
license (with its leases) and audit record, with their ids, in one
transaction: all or nothing. A target that holds any of them is refused.
Stop relay serve on the source before switching it to the target: leases
taken after the copy started are not in it.
`;

/** Builds the `migrate` command. */
export function migrateCommand(context: CommandContext): Command {
  return new Command("migrate")
    .description(
      "copy a database into an empty one, SQLite to PostgreSQL or back, with every license, pool, node, lease and audit record",
    )
    .addOption(flagOption(FLAGS.migrate.from))
    .addOption(flagOption(FLAGS.migrate.to))
    .addHelpText("after", EXAMPLE)
    .action(async (options: { from: string; to: string }) => {
      const from = await copyEnd(context, options.from, "--from");
      const to = await copyEnd(context, options.to, "--to");
      const result = await copyDatabase(from, to, { now: context.now() });
      context.io.stdout(`${summary(result)}\n`);
    });
}

/** One end as typed: a path resolved, a URL as is, with its password. */
async function copyEnd(context: CommandContext, typed: string, flag: string): Promise<CopyEnd> {
  if (typed.trim() === "") throw new UsageError(`${flag} needs a file path or a postgres:// URL`);
  const location = databaseLocation(typed, { resolve: (path) => context.path(path) });
  if (location === ":memory:") throw new UsageError(`${flag} cannot be :memory:`);
  context.secrets.addDatabase(location);
  return { location, password: await context.databasePassword(location) };
}

/** `copied 3 pools, 120 licenses, 45 nodes (40 leases), 10432 audit records`. */
export function summary(result: CopyResult): string {
  return `copied ${plural(result.pools, "pool")}, ${plural(result.licenses, "license")}, ${
    plural(result.nodes, "node")
  } (${plural(result.leases, "lease")}), ${plural(result.auditRecords, "audit record")}`;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
