/**
 * One measuring run of the benchmark: every section the options ask for, in
 * order, on databases built in the run's temporary folder, gathered into
 * {@link Results}.
 *
 * @module
 */

import { elapsedSeconds } from "./log.ts";
import type { Context } from "./measure.ts";
import type { Section } from "./options.ts";
import { SECTIONS } from "./options.ts";
import type { Machine, Results } from "./results.ts";
import { gitState } from "./machine.ts";
import { runAddSection } from "./sections/add.ts";
import { ceilingHeartbeatAgain, runCeilingSection } from "./sections/ceiling.ts";
import { runDiagSection } from "./sections/diag.ts";
import { runLoadSection } from "./sections/load.ts";
import { runLsSection } from "./sections/ls.ts";
import { runPostgresSection } from "./sections/postgres.ts";
import { runReapSection } from "./sections/reap.ts";
import { runRssSection } from "./sections/rss.ts";
import { runStartupSection } from "./sections/startup.ts";
import { runSweepSection } from "./sections/sweep.ts";
import { Templates } from "./templates.ts";

/** What a section adds to the results. */
type SectionRunner = (context: Context, templates: Templates) => Promise<Partial<Results>>;

const RUNNERS: Record<Section, SectionRunner> = {
  ceiling: runCeilingSection,
  load: runLoadSection,
  sweep: runSweepSection,
  diag: runDiagSection,
  postgres: runPostgresSection,
  reap: runReapSection,
  add: runAddSection,
  ls: runLsSection,
  startup: runStartupSection,
  rss: runRssSection,
};

/** Runs the sections `context.options` asks for on `machine`; returns everything measured. */
export async function runBenchmark(context: Context, machine: Machine): Promise<Results> {
  const { options, profile } = context;
  const templates = new Templates(context.dir);
  const results: Results = {
    mode: options.quick ? "quick" : "full",
    date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
    durationSeconds: 0,
    connections: options.connections,
    machine,
    templates: [],
    configs: [],
    reaps: [],
    startup: [],
  };
  for (const section of SECTIONS) {
    if (options.only === null || options.only.has(section)) {
      Object.assign(results, await RUNNERS[section](context, templates));
    }
  }
  if (results.ceiling && !options.quick) {
    results.ceiling.heartbeatEnd = await ceilingHeartbeatAgain(context);
  }
  results.templates = templates.summary([
    ...profile.ns,
    ...profile.reap.map((r) => r.licenses),
    profile.postgres.n,
    profile.lsLicenses,
  ]);
  results.durationSeconds = elapsedSeconds();
  const codeNow = gitState();
  if (codeNow !== machine.code) {
    machine.code += ` at the start, ${codeNow} at the end (the code changed during the run)`;
  }
  results.generator = context.generator;
  results.clientProcesses = options.clientProcesses;
  return results;
}
