/**
 * The sections of the benchmark report about everything but leasing under
 * load: reaping, the vendor commands, start-up and memory, and the set-up of
 * the databases. Each function returns the section's lines, empty when the
 * run did not measure it.
 *
 * @module
 */

import { fmt, ms } from "../format.ts";
import { LIVE_NODES, type Results } from "../results.ts";
import { table } from "./markdown.ts";

/** "Reaping": time to reap, and what a client saw meanwhile. */
export function reapingSection(results: Results): string[] {
  if (results.reaps.length === 0) return [];
  return [
    "## Reaping",
    "",
    "Expired leases written into the database before start-up (`--ttl 30s --cull-interval 1s`, audit on); " +
    `a client process keeps ${LIVE_NODES} connections busy with \`GET /v1/health\` and heartbeats of ` +
    `${LIVE_NODES} live nodes meanwhile. Time runs from the reaper's first run (start-up + 1 s) until the ` +
    "database shows every expired lease free (polled every 10 ms).",
    "",
    table(
      [
        "expired leases",
        "licenses",
        "time to reap",
        "client requests meanwhile",
        "client p99",
        "client max",
        "over 100 ms",
      ],
      results.reaps.map((r) => [
        fmt(r.expired),
        fmt(r.licenses),
        r.complete ? `${r.seconds.toFixed(2)} s` : "did not finish",
        fmt(r.probe.inWindow),
        `${ms(r.probe.p99)} ms`,
        `${ms(r.probe.max)} ms`,
        String(r.probe.over100),
      ]),
      ["r", "r", "r", "r", "r", "r", "r"],
    ),
    "",
  ];
}

/** "Vendor commands": `relay add` of many files, `relay ls --json` of many licenses. */
export function vendorSection(results: Results): string[] {
  const { add, ls } = results;
  if (!add && !ls) return [];
  const rows: string[][] = [];
  if (add) {
    rows.push([
      "`relay add`, 1 file (fixed cost of the process)",
      `${add.baselineSeconds.toFixed(2)} s`,
      "",
    ]);
    for (const run of add.runs) {
      rows.push([
        `\`relay add\`, ${fmt(run.files)} minted files in one command`,
        `${run.seconds.toFixed(2)} s${run.ok ? "" : " (FAILED)"}`,
        `${fmt(run.files / run.seconds)} files/s, ${
          fmt(run.argumentBytes / 1024)
        } KiB of arguments`,
      ]);
    }
  }
  if (ls) {
    rows.push([
      `\`relay ls --json\`, ${fmt(ls.licenses)} licenses`,
      `${ls.seconds.toFixed(2)} s${ls.ok ? "" : " (FAILED)"}`,
      `${fmt(ls.bytes / 2 ** 20, 1)} MiB of output`,
    ]);
  }
  return ["## Vendor commands", "", table(["command", "time", ""], rows, ["l", "r", "l"]), ""];
}

/** "Start-up and memory": spawn to healthy, and the RSS of a large server. */
export function startupSection(results: Results): string[] {
  const { startup, rss } = results;
  if (startup.length === 0 && !rss) return [];
  const rows: string[][] = startup.map((s) => [
    `${s.label}${
      s.licenses ? `, ${fmt(s.licenses)} licenses` : ""
    }: spawn → first 200 from /v1/health`,
    `${fmt(s.median)} ms median`,
    s.trials.map((t) => fmt(t)).join(", "),
  ]);
  if (rss) {
    rows.push([
      `RSS, ${fmt(rss.licenses)} licenses and ${
        fmt(rss.nodes)
      } active nodes, after heartbeats and cycles`,
      `${fmt(rss.afterLoad.rssMiB, 1)} MiB`,
      `${fmt(rss.atStart.rssMiB, 1)} MiB at start; peak (VmHWM) ${
        fmt(rss.afterLoad.hwmMiB, 1)
      } MiB`,
    ]);
  }
  return ["## Start-up and memory", "", table(["", "", ""], rows, ["l", "r", "l"]), ""];
}

/** "Set-up": how long the benchmark databases took to build, and their size. */
export function setupSection(results: Results): string[] {
  return [
    "## Set-up",
    "",
    table(
      [
        "licenses",
        "database built",
        "all leased (copy + lease)",
        "database size",
        "license file size",
      ],
      results.templates.map((t) => [
        fmt(t.n),
        `${t.buildSeconds.toFixed(1)} s`,
        t.leaseSeconds === undefined ? "–" : `${t.leaseSeconds.toFixed(1)} s`,
        `${fmt(t.dbMiB)} MiB`,
        `${fmt(t.fileBytes)} B`,
      ]),
      ["r", "r", "r", "r", "r"],
    ),
    "",
  ];
}
