/**
 * `relay doctor`: checks the database without changing it and prints one
 * line per check (`ok`, `warn` or `FAIL`, what was found, what to do); exits
 * 1 when anything needs action.
 *
 * @module
 */

import { Command } from "commander";
import { parseDuration } from "../lib/config.ts";
import { ChecksFailedError } from "../lib/errors.ts";
import { type Check, diagnose, needsAction } from "../lib/doctor.ts";
import { diagnosePostgres, isPostgresInspection } from "../lib/doctor_postgres.ts";
import { inspectDatabase } from "../lib/storage/open.ts";
import type { CommandContext } from "./context.ts";
import { isPostgresUrl } from "./database.ts";
import { flagOption, FLAGS, flagValue } from "./flags.ts";

/** The options of `relay doctor` as commander parses them. */
interface DoctorOptions {
  expiring?: string;
  json?: boolean;
}

/**
 * Builds the `doctor` command. When a check needs action, the report goes to
 * stdout as usual and the run fails with one `error:` line counting them.
 */
export function doctorCommand(context: CommandContext): Command {
  return new Command("doctor")
    .description(
      "check the database (integrity, file modes, schema, clock, expiring licenses, overdue leases) without changing it",
    )
    .addOption(flagOption(FLAGS.doctor.expiring))
    .addOption(flagOption(FLAGS.doctor.json))
    .action(async (options: DoctorOptions) => {
      const { io } = context;
      // Never undefined: the flag has a default.
      const withinText = flagValue(FLAGS.doctor.expiring, options.expiring, io.env)!;
      const within = Math.floor(parseDuration(withinText) / 1000);
      const now = context.now();
      const { database } = context.config();
      const password = isPostgresUrl(database)
        ? await context.databasePassword(database)
        : undefined;
      const inspection = await inspectDatabase(database, {
        now,
        expiringBy: now + within,
        password,
      });
      const diagnosis = { now, within, withinText };
      const checks = isPostgresInspection(inspection)
        ? diagnosePostgres(inspection, diagnosis)
        : diagnose(inspection, diagnosis);
      const healthy = !needsAction(checks);
      io.stdout(
        options.json
          ? JSON.stringify({ database: context.databaseName(), healthy, checks }) + "\n"
          : checks.map(renderCheck).join(""),
      );
      if (!healthy) throw new ChecksFailedError(summary(checks));
    });
}

/** The width of the check names' column. */
const NAME_WIDTH = 12;

/** `warn  file modes    <message>; <hint>` */
function renderCheck(check: Check): string {
  const status = check.status === "fail" ? "FAIL" : check.status;
  const hint = check.hint === null ? "" : `; ${check.hint}`;
  return `${status.padEnd(4)}  ${check.name.padEnd(NAME_WIDTH)}  ${check.message}${hint}\n`;
}

/** `2 of 9 checks need action (1 FAIL, 1 warn)`. */
function summary(checks: readonly Check[]): string {
  const fail = checks.filter((check) => check.status === "fail").length;
  const warn = checks.filter((check) => check.status === "warn").length;
  const counts = [fail > 0 ? `${fail} FAIL` : "", warn > 0 ? `${warn} warn` : ""]
    .filter(Boolean).join(", ");
  return `${fail + warn} of ${checks.length} checks need action (${counts})`;
}
