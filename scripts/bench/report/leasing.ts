/**
 * The leasing sections of the benchmark report: Relay against the ceiling
 * under load, at lower concurrency, and without fsync. Each function returns
 * the section's lines, empty when the run did not measure it.
 *
 * @module
 */

import { cpuPercent, fmt, ms } from "../format.ts";
import type { CeilingRuns, Results, Run } from "../results.ts";
import { latency, onOff, rateAndLatency, ratio, table } from "./markdown.ts";

/** "Leasing under load": rates, latencies, CPU and memory of every configuration. */
export function leasingSection(results: Results): string[] {
  const { ceiling, configs } = results;
  if (!ceiling && configs.length === 0) return [];
  const out: string[] = [];
  out.push(`## Leasing under load (${results.connections} connections)`);
  out.push("");
  out.push(
    "Each cell: answers per second (× the ceiling's rate for the same request pattern), then " +
      "latency p50 / p99 in ms. `cycle` is claim → 3 heartbeats → release on one connection; its rate " +
      "is whole cycles per second (5 requests each), its latency per request.",
  );
  out.push("");
  const rows: string[][] = [];
  const ceilingRow = (name: string, runs: CeilingRuns) => [
    name,
    "",
    "",
    `${fmt(runs.claim.load.rate)}`,
    latency(runs.claim.load),
    `${fmt(runs.heartbeat.load.rate)}`,
    latency(runs.heartbeat.load),
    "",
    "",
    `${fmt(runs.cycle.load.rate / 5)}`,
    latency(runs.cycle.load),
    String(runs.claim.load.non2xx + runs.heartbeat.load.non2xx + runs.cycle.load.non2xx),
  ];
  if (ceiling) rows.push(ceilingRow("ceiling", ceiling));
  if (ceiling?.group) rows.push(ceilingRow("ceiling, group commit", ceiling.group));
  for (const c of configs) {
    const non2xx = c.claim.load.non2xx + c.release.load.non2xx + c.heartbeat.load.non2xx +
      c.cycle.load.non2xx;
    rows.push([
      fmt(c.n),
      c.strategy,
      onOff(c.audit),
      `${fmt(c.claim.load.rate)}${ratio(c.claim.load.rate, ceiling?.claim.load.rate)}`,
      latency(c.claim.load),
      `${fmt(c.heartbeat.load.rate)}${ratio(c.heartbeat.load.rate, ceiling?.heartbeat.load.rate)}`,
      latency(c.heartbeat.load),
      // Releases have no pattern of their own in the ceiling: a fixed path, as heartbeats.
      `${fmt(c.release.load.rate)}${ratio(c.release.load.rate, ceiling?.heartbeat.load.rate)}`,
      latency(c.release.load),
      `${fmt(c.cycle.load.rate / 5)}${ratio(c.cycle.load.rate, ceiling?.cycle.load.rate)}`,
      latency(c.cycle.load),
      String(non2xx + c.serverErrors),
    ]);
  }
  out.push(
    table(
      [
        "N",
        "strategy",
        "audit",
        "claim 201/s",
        "claim ms",
        "heartbeat 202/s",
        "heartbeat ms",
        "release 204/s",
        "release ms",
        "cycles/s",
        "cycle ms",
        "non-2xx",
      ],
      rows,
      ["r", "l", "l", "r", "r", "r", "r", "r", "r", "r", "r", "r"],
    ),
  );
  out.push("");
  if (configs.length > 0) out.push(...resourcesTable(results));
  if (ceiling?.heartbeatEnd) {
    out.push(
      `The ceiling's heartbeat pattern measured again at the end of the run: ${
        fmt(ceiling.heartbeatEnd.load.rate)
      }/s (${fmt(ceiling.heartbeat.load.rate)}/s at the start).`,
    );
    out.push("");
  }
  return out;
}

/** CPU, maximum latency, bytes dirtied and memory of each configuration. */
function resourcesTable(results: Results): string[] {
  const cpu = (run: Run) =>
    `${cpuPercent(run.cpu.server, run.cpu)} / ${cpuPercent(run.cpu.main, run.cpu)} / ${
      fmt((run.cpu.machineBusy / run.cpu.machineTotal) * 100)
    }`;
  const kibPerAnswer = (run: Run) => fmt(run.cpu.diskBytes / run.load.requests / 1024, 1);
  const detail = results.configs.map((c) => [
    fmt(c.n),
    c.strategy,
    onOff(c.audit),
    `${fmt(c.claim.load.requests)} in ${c.claimRounds} round(s)`,
    cpu(c.claim),
    cpu(c.heartbeat),
    `${ms(c.claim.load.max)} / ${ms(c.heartbeat.load.max)}`,
    `${kibPerAnswer(c.claim)} / ${kibPerAnswer(c.heartbeat)}`,
    `${fmt(c.memory.claims.rssMiB)} / ${fmt(c.memory.heartbeats.rssMiB)}`,
  ]);
  return [
    "CPU during the runs, in % of one core: server process / its main (JavaScript) thread / " +
    `the whole machine (${results.machine.cores} cores = 100 %). Dirtied: page-cache KiB the server dirtied per ` +
    "answer (/proc/<pid>/io write_bytes: WAL, database file and SQLite's temporary files; a " +
    "measure of write volume, not bytes on disk). Memory: RSS of the claim server and of the " +
    "heartbeat server after their load.",
    "",
    table(
      [
        "N",
        "strategy",
        "audit",
        "claims measured",
        "claim CPU %",
        "heartbeat CPU %",
        "max ms claim / heartbeat",
        "KiB dirtied per claim / heartbeat",
        "RSS MiB",
      ],
      detail,
      ["r", "l", "l", "r", "r", "r", "r", "r", "r"],
    ),
    "",
  ];
}

/** "Latency at lower concurrency": the service time behind the latency at full load. */
export function sweepSection(results: Results): string[] {
  if (!results.sweep || results.sweep.length === 0) return [];
  return [
    "## Latency at lower concurrency",
    "",
    "With one request in flight the latency is the service time; at higher concurrency requests queue " +
    "(one SQLite writer, one JavaScript thread), so latency ≈ connections ÷ rate (Little's law).",
    "",
    table(
      [
        "connections",
        "relay claim",
        "relay heartbeat",
        "ceiling, claim pattern",
        "ceiling, heartbeat pattern",
      ],
      results.sweep.map((r) => [
        String(r.connections),
        rateAndLatency(r.relayClaim),
        rateAndLatency(r.relayHeartbeat),
        rateAndLatency(r.ceilingClaim),
        rateAndLatency(r.ceilingHeartbeat),
      ]),
      ["r", "r", "r", "r", "r"],
    ),
    "",
  ];
}

/** "Where the time goes: fsync": the same runs with `synchronous=NORMAL`. */
export function fsyncSection(results: Results): string[] {
  const d = results.diag;
  if (!d) return [];
  const { ceiling } = results;
  const full = results.configs.find((c) => c.n === d.n && c.strategy === "fifo" && c.audit);
  return [
    "## Where the time goes: fsync",
    "",
    `Relay (N=${
      fmt(d.n)
    }, fifo, audit on) and the ceiling again with \`--pragma synchronous=NORMAL\`, ` +
    "which in WAL mode skips the fsync of each commit (not a recommended setting: an acknowledged " +
    "lease could be lost on power failure). The difference is the cost of fsync.",
    "",
    table(["", "synchronous=FULL (default)", "synchronous=NORMAL"], [
      ["relay claim", full ? rateAndLatency(full.claim) : "–", rateAndLatency(d.relayNormal.claim)],
      [
        "relay heartbeat",
        full ? rateAndLatency(full.heartbeat) : "–",
        rateAndLatency(d.relayNormal.heartbeat),
      ],
      [
        "ceiling heartbeat pattern",
        ceiling ? rateAndLatency(ceiling.heartbeat) : "–",
        rateAndLatency(d.ceilingNormal.heartbeat),
      ],
    ], ["l", "r", "r"]),
    "",
  ];
}
