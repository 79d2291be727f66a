/**
 * The "ls" section: `relay ls --json` of a large database, its output
 * counted and discarded.
 *
 * @module
 */

import { fmt } from "../format.ts";
import { log } from "../log.ts";
import type { Context } from "../measure.ts";
import { exitWithin } from "../procs.ts";
import type { Results } from "../results.ts";
import { spawnRelay } from "../servers.ts";
import type { Templates } from "../templates.ts";

/** Runs the section on the profile's number of licenses. */
export async function runLsSection(
  context: Context,
  templates: Templates,
): Promise<Pick<Results, "ls">> {
  const n = context.profile.lsLicenses;
  const database = `${context.dir}/ls.sqlite`;
  await templates.copyFree(n, database);
  const start = performance.now();
  const process = spawnRelay(["ls", "--json", "--database", database], { discardStdout: true });
  const status = await exitWithin(process, 120_000);
  const ls = {
    licenses: n,
    seconds: (performance.now() - start) / 1000,
    bytes: process.stdoutBytes,
    ok: status.success,
  };
  log(
    `relay ls --json of ${fmt(n)}: ${ls.seconds.toFixed(2)} s, ${fmt(ls.bytes / 2 ** 20, 1)} MiB`,
  );
  return { ls };
}
