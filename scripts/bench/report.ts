/**
 * The results of `scripts/bench.ts` and the report made of them: the shape of
 * `bench-out/results-*.json`, the targets (met or missed), and BENCHMARKS.md
 * as `deno fmt` writes it, keeping the hand-written notes of the file it
 * replaces.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import type { Strategy } from "../../lib/leases.ts";
import type { Generator, LoadResult } from "./load.ts";

const REPO = fileURLToPath(new URL("../..", import.meta.url));

export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return "–";
  return n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

export function ms(n: number): string {
  if (!Number.isFinite(n)) return "–";
  return n >= 100 ? fmt(n, 0) : n >= 10 ? fmt(n, 1) : fmt(n, 2);
}

export interface CpuUse {
  wall: number;
  /** CPU seconds of the server process, and of its main (JavaScript) thread. */
  server: number;
  main: number;
  /** Busy and total jiffies of the machine. */
  machineBusy: number;
  machineTotal: number;
  /** Bytes the server wrote to storage (WAL and database file). */
  diskBytes: number;
}

export interface Run {
  load: LoadResult;
  cpu: CpuUse;
}

export interface CeilingRuns {
  claim: Run;
  heartbeat: Run;
  cycle: Run;
}

export interface CeilingResult extends CeilingRuns {
  /** The same server committing the requests that arrive together in one transaction. */
  group?: CeilingRuns;
  /** The heartbeat ceiling again at the end of the run, for drift. */
  heartbeatEnd?: Run;
}

export interface Memory {
  rssMiB: number;
  hwmMiB: number;
}

export interface ConfigResult {
  n: number;
  strategy: Strategy;
  audit: boolean;
  claim: Run;
  release: Run;
  cycle: Run;
  heartbeat: Run;
  claimRounds: number;
  /** Memory of the claim/release/cycle server and of the heartbeat server after their load. */
  memory: { claims: Memory; heartbeats: Memory };
  /** Log lines at level error from either server. */
  serverErrors: number;
}

export interface SweepRow {
  connections: number;
  relayClaim: Run;
  relayHeartbeat: Run;
  ceilingClaim: Run;
  ceilingHeartbeat: Run;
}

export interface DiagResult {
  n: number;
  relayNormal: { claim: Run; heartbeat: Run };
  ceilingNormal: { heartbeat: Run };
}

export interface ReapResult {
  expired: number;
  licenses: number;
  /** From the reaper's first run (start-up + cull interval) until every expired lease was free. */
  seconds: number;
  /** From the first expired lease seen free until the last. */
  secondsFromFirst: number;
  complete: boolean;
  probe: {
    requests: number;
    /** During the reap window. */
    inWindow: number;
    max: number;
    p99: number;
    over100: number;
    non2xx: number;
    /** The slowest requests: [start, ms after the reaper's first run; latency ms]. */
    worst: [number, number][];
  };
}

export const LIVE_NODES = 8;

/** `relay add` runs: minting, the one-file baseline, and each count. */
export interface AddSection {
  mintSeconds: number;
  baselineSeconds: number;
  runs: AddResult[];
}

export interface AddResult {
  files: number;
  seconds: number;
  ok: boolean;
  added: number;
  argumentBytes: number;
}

export interface LsResult {
  licenses: number;
  seconds: number;
  bytes: number;
  ok: boolean;
}

export interface StartupResult {
  label: string;
  licenses: number;
  /** Milliseconds from spawn to the first 200 of /v1/health, per trial. */
  trials: number[];
  median: number;
  min: number;
}

export interface RssResult {
  licenses: number;
  nodes: number;
  atStart: Memory;
  afterLoad: Memory;
  heartbeat: Run;
  cycle: Run;
}

export interface Machine {
  /** The commit measured, and whether the work tree had changes. */
  code: string;
  cores: number;
  cpu: string;
  memoryGiB: number;
  kernel: string;
  deno: string;
  v8: string;
  generator: string;
  filesystem: string;
  fdatasync: { p50: number; p99: number };
}

export interface Results {
  mode: "full" | "quick";
  generator?: Generator;
  clientProcesses?: number;
  date: string;
  durationSeconds: number;
  connections: number;
  machine: Machine;
  templates: {
    n: number;
    buildSeconds: number;
    leaseSeconds?: number;
    dbMiB: number;
    fileBytes: number;
  }[];
  ceiling?: CeilingResult;
  configs: ConfigResult[];
  sweep?: SweepRow[];
  diag?: DiagResult;
  reaps: ReapResult[];
  add?: AddSection;
  ls?: LsResult;
  startup: StartupResult[];
  rss?: RssResult;
}

function ratio(rate: number, ceiling: number | undefined): string {
  if (ceiling === undefined || !(ceiling > 0)) return "";
  return ` (${(rate / ceiling).toFixed(2)}×)`;
}

function table(header: string[], rows: string[][], align?: ("l" | "r")[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `| ${
      cells.map((c, i) => (align?.[i] === "l" ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(
        " | ",
      )
    } |`;
  const rule = `| ${
    widths.map((w, i) => (align?.[i] === "l" ? "-".repeat(w) : "-".repeat(w - 1) + ":")).join(" | ")
  } |`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

interface Target {
  name: string;
  measured: string;
  met: boolean | null;
}

function targets(results: Results): Target[] {
  const list: Target[] = [];
  const ceiling = results.ceiling;
  for (const [audit, floor] of [[true, 0.6], [false, 0.8]] as const) {
    const configs = results.configs.filter((c) => c.audit === audit);
    if (!ceiling || configs.length === 0) {
      list.push({
        name: `heartbeat ≥ ${floor} × ceiling (audit ${audit ? "on" : "off"})`,
        measured: "not measured",
        met: null,
      });
      continue;
    }
    const ratios = configs.map((c) => ({
      c,
      r: c.heartbeat.load.rate / ceiling.heartbeat.load.rate,
    }));
    const worst = ratios.reduce((a, b) => (b.r < a.r ? b : a));
    const group = ceiling.group?.heartbeat.load.rate;
    const groupText = group
      ? `; against the group-commit ceiling ${
        (worst.c.heartbeat.load.rate / group).toFixed(2)
      }× at worst`
      : "";
    list.push({
      name: `heartbeat throughput ≥ ${floor} × ceiling, audit ${audit ? "on" : "off"}`,
      measured: `${worst.r.toFixed(2)}× at worst (N=${fmt(worst.c.n)} ${worst.c.strategy}); ` +
        `best ${Math.max(...ratios.map((x) => x.r)).toFixed(2)}×${groupText}`,
      met: ratios.every((x) => x.r >= floor),
    });
  }
  if (results.configs.length > 0) {
    const worst = results.configs.reduce((a, b) => (b.claim.load.p99 > a.claim.load.p99 ? b : a));
    list.push({
      name: `claim p99 < 5 ms at ${results.connections} connections`,
      measured: `${ms(worst.claim.load.p99)} ms at worst (N=${
        fmt(worst.n)
      } ${worst.strategy}, audit ${worst.audit ? "on" : "off"}); best ${
        ms(Math.min(...results.configs.map((c) => c.claim.load.p99)))
      } ms; ceiling's claim pattern ${ceiling ? ms(ceiling.claim.load.p99) : "–"} ms`,
      met: results.configs.every((c) => c.claim.load.p99 < 5),
    });
  }
  const ns = [...new Set(results.configs.map((c) => c.n))].sort((a, b) => a - b);
  if (ns.length >= 2) {
    const [small, large] = [ns[0], ns[ns.length - 1]];
    const parts: string[] = [];
    let met = true;
    for (const strategy of new Set(results.configs.map((c) => c.strategy))) {
      for (const audit of [true, false]) {
        const a = results.configs.find((c) =>
          c.n === small && c.strategy === strategy && c.audit === audit
        );
        const b = results.configs.find((c) =>
          c.n === large && c.strategy === strategy && c.audit === audit
        );
        if (!a || !b) continue;
        const r = b.claim.load.p50 / a.claim.load.p50;
        met &&= r <= 1.2;
        parts.push(`${strategy}${audit ? "" : " no-audit"} ${r.toFixed(2)}×`);
      }
    }
    list.push({
      name: `claim p50 at N=${fmt(large)} within 1.2 × of N=${fmt(small)}, every strategy`,
      measured: parts.join(", "),
      met,
    });
  } else {
    list.push({
      name: "claim p50 at N=100,000 within 1.2 × of N=1,000",
      measured: "needs both N",
      met: null,
    });
  }
  const bigReap = results.reaps.reduce<ReapResult | undefined>(
    (a, b) => (!a || b.expired > a.expired ? b : a),
    undefined,
  );
  if (bigReap) {
    list.push({
      name: `reaping ${fmt(bigReap.expired)} expired leases < 2 s`,
      measured: bigReap.complete ? `${bigReap.seconds.toFixed(2)} s` : "did not finish",
      met: bigReap.complete && bigReap.seconds < 2,
    });
    const worstStall = Math.max(...results.reaps.map((r) => r.probe.max));
    list.push({
      name: "no client request stalls > 100 ms while reaping",
      measured: results.reaps.map((r) =>
        `${fmt(r.expired)}: max ${ms(r.probe.max)} ms, ${r.probe.over100} over 100 ms`
      ).join("; "),
      met: worstStall <= 100,
    });
  }
  const add = results.add?.runs.reduce<AddResult | undefined>(
    (a, b) => (!a || b.files > a.files ? b : a),
    undefined,
  );
  if (add) {
    list.push({
      name: `relay add of ${fmt(add.files)} files < 15 s`,
      measured: `${add.seconds.toFixed(2)} s${add.ok ? "" : " (FAILED)"}`,
      met: add.ok && add.seconds < 15,
    });
  }
  const relayStartups = results.startup.filter((s) => s.label === "relay serve");
  const bigStart = relayStartups.reduce<StartupResult | undefined>(
    (a, b) => (!a || b.licenses > a.licenses ? b : a),
    undefined,
  );
  if (bigStart) {
    list.push({
      name: `start-up with ${fmt(bigStart.licenses)} licenses < 500 ms to healthy`,
      measured: `${fmt(bigStart.median)} ms median of ${bigStart.trials.length} (best ${
        fmt(bigStart.min)
      } ms)`,
      met: bigStart.median < 500,
    });
  }
  if (results.rss) {
    const r = results.rss;
    list.push({
      name: `server RSS < 150 MB with ${fmt(r.licenses)} licenses and ${fmt(r.nodes)} active nodes`,
      measured: `${fmt(r.afterLoad.rssMiB * 1.048576, 0)} MB after load (peak ${
        fmt(r.afterLoad.hwmMiB * 1.048576, 0)
      } MB)`,
      met: r.afterLoad.rssMiB * 1.048576 < 150,
    });
  }
  return list;
}

function renderReport(results: Results, notes: string, generatorCommand: string): string {
  const m = results.machine;
  const ceiling = results.ceiling;
  const C = results.connections;
  const out: string[] = [];
  out.push("# Benchmarks");
  out.push("");
  out.push(
    `Relay measured the way an operator sizing a cluster would: the real \`relay serve\` over loopback, ` +
      `${C} keep-alive connections, against a ceiling that does the least any durable server must do ` +
      `per request (one fsync'd SQLite upsert). Generated by \`deno task bench${
        results.mode === "quick" ? " --quick" : ""
      }\` ` +
      `(\`scripts/bench.ts\`) on ${results.date} in ${
        fmt(results.durationSeconds / 60, 1)
      } minutes.`,
  );
  out.push("");
  out.push("## Machine");
  out.push("");
  out.push(
    table(["", ""], [
      ["code", `commit ${m.code}`],
      ["CPU", `${m.cpu}, ${m.cores} cores`],
      ["memory", `${fmt(m.memoryGiB, 1)} GiB`],
      ["kernel", m.kernel],
      ["Deno", `${m.deno} (V8 ${m.v8})`],
      ["load generator", m.generator],
      [
        "database disk",
        `${m.filesystem}; 4 KiB write + fdatasync p50 ${ms(m.fdatasync.p50)} ms, p99 ${
          ms(m.fdatasync.p99)
        } ms`,
      ],
    ], ["l", "l"]),
  );
  out.push("");
  out.push("## Targets");
  out.push("");
  out.push(
    table(
      ["target", "measured", ""],
      targets(results).map((
        t,
      ) => [t.name, t.measured, t.met === null ? "not measured" : t.met ? "met" : "**missed**"]),
      ["l", "l", "l"],
    ),
  );
  out.push("");
  if (ceiling || results.configs.length > 0) {
    out.push(`## Leasing under load (${C} connections)`);
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
      `${ms(runs.claim.load.p50)} / ${ms(runs.claim.load.p99)}`,
      `${fmt(runs.heartbeat.load.rate)}`,
      `${ms(runs.heartbeat.load.p50)} / ${ms(runs.heartbeat.load.p99)}`,
      "",
      "",
      `${fmt(runs.cycle.load.rate / 5)}`,
      `${ms(runs.cycle.load.p50)} / ${ms(runs.cycle.load.p99)}`,
      String(runs.claim.load.non2xx + runs.heartbeat.load.non2xx + runs.cycle.load.non2xx),
    ];
    if (ceiling) rows.push(ceilingRow("ceiling", ceiling));
    if (ceiling?.group) rows.push(ceilingRow("ceiling, group commit", ceiling.group));
    for (const c of results.configs) {
      const non2xx = c.claim.load.non2xx + c.release.load.non2xx + c.heartbeat.load.non2xx +
        c.cycle.load.non2xx;
      rows.push([
        fmt(c.n),
        c.strategy,
        c.audit ? "on" : "off",
        `${fmt(c.claim.load.rate)}${ratio(c.claim.load.rate, ceiling?.claim.load.rate)}`,
        `${ms(c.claim.load.p50)} / ${ms(c.claim.load.p99)}`,
        `${fmt(c.heartbeat.load.rate)}${
          ratio(c.heartbeat.load.rate, ceiling?.heartbeat.load.rate)
        }`,
        `${ms(c.heartbeat.load.p50)} / ${ms(c.heartbeat.load.p99)}`,
        `${fmt(c.release.load.rate)}${ratio(c.release.load.rate, ceiling?.heartbeat.load.rate)}`,
        `${ms(c.release.load.p50)} / ${ms(c.release.load.p99)}`,
        `${fmt(c.cycle.load.rate / 5)}${ratio(c.cycle.load.rate, ceiling?.cycle.load.rate)}`,
        `${ms(c.cycle.load.p50)} / ${ms(c.cycle.load.p99)}`,
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
    if (results.configs.length > 0) {
      const detail = results.configs.map((c) => {
        const cpu = (run: Run) =>
          `${fmt((run.cpu.server / run.cpu.wall) * 100)} / ${
            fmt((run.cpu.main / run.cpu.wall) * 100)
          } / ${fmt((run.cpu.machineBusy / run.cpu.machineTotal) * 100)}`;
        return [
          fmt(c.n),
          c.strategy,
          c.audit ? "on" : "off",
          `${fmt(c.claim.load.requests)} in ${c.claimRounds} round(s)`,
          cpu(c.claim),
          cpu(c.heartbeat),
          `${ms(c.claim.load.max)} / ${ms(c.heartbeat.load.max)}`,
          `${fmt(c.claim.cpu.diskBytes / c.claim.load.requests / 1024, 1)} / ${
            fmt(c.heartbeat.cpu.diskBytes / c.heartbeat.load.requests / 1024, 1)
          }`,
          `${fmt(c.memory.claims.rssMiB)} / ${fmt(c.memory.heartbeats.rssMiB)}`,
        ];
      });
      out.push(
        "CPU during the runs, in % of one core: server process / its main (JavaScript) thread / " +
          `the whole machine (${m.cores} cores = 100 %). Dirtied: page-cache KiB the server dirtied per ` +
          "answer (/proc/<pid>/io write_bytes: WAL, database file and SQLite's temporary files; a " +
          "measure of write volume, not bytes on disk). Memory: RSS of the claim server and of the " +
          "heartbeat server after their load.",
      );
      out.push("");
      out.push(
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
      );
      out.push("");
    }
    if (ceiling?.heartbeatEnd) {
      out.push(
        `The ceiling's heartbeat pattern measured again at the end of the run: ${
          fmt(ceiling.heartbeatEnd.load.rate)
        }/s (${fmt(ceiling.heartbeat.load.rate)}/s at the start).`,
      );
      out.push("");
    }
  }
  if (results.sweep && results.sweep.length > 0) {
    out.push("## Latency at lower concurrency");
    out.push("");
    out.push(
      "With one request in flight the latency is the service time; at higher concurrency requests queue " +
        "(one SQLite writer, one JavaScript thread), so latency ≈ connections ÷ rate (Little's law).",
    );
    out.push("");
    out.push(
      table(
        [
          "connections",
          "relay claim",
          "relay heartbeat",
          "ceiling, claim pattern",
          "ceiling, heartbeat pattern",
        ],
        results.sweep.map((r) => {
          const cell = (run: Run) =>
            `${fmt(run.load.rate)}/s, ${ms(run.load.p50)} / ${ms(run.load.p99)} ms`;
          return [
            String(r.connections),
            cell(r.relayClaim),
            cell(r.relayHeartbeat),
            cell(r.ceilingClaim),
            cell(r.ceilingHeartbeat),
          ];
        }),
        ["r", "r", "r", "r", "r"],
      ),
    );
    out.push("");
  }
  if (results.diag) {
    const d = results.diag;
    const cell = (run: Run) =>
      `${fmt(run.load.rate)}/s, ${ms(run.load.p50)} / ${ms(run.load.p99)} ms`;
    const full = results.configs.find((c) => c.n === d.n && c.strategy === "fifo" && c.audit);
    out.push("## Where the time goes: fsync");
    out.push("");
    out.push(
      `Relay (N=${
        fmt(d.n)
      }, fifo, audit on) and the ceiling again with \`--pragma synchronous=NORMAL\`, ` +
        "which in WAL mode skips the fsync of each commit (not a recommended setting: an acknowledged " +
        "lease could be lost on power failure). The difference is the cost of fsync.",
    );
    out.push("");
    out.push(
      table(["", "synchronous=FULL (default)", "synchronous=NORMAL"], [
        ["relay claim", full ? cell(full.claim) : "–", cell(d.relayNormal.claim)],
        ["relay heartbeat", full ? cell(full.heartbeat) : "–", cell(d.relayNormal.heartbeat)],
        [
          "ceiling heartbeat pattern",
          ceiling ? cell(ceiling.heartbeat) : "–",
          cell(d.ceilingNormal.heartbeat),
        ],
      ], ["l", "r", "r"]),
    );
    out.push("");
  }
  if (results.reaps.length > 0) {
    out.push("## Reaping");
    out.push("");
    out.push(
      "Expired leases written into the database before start-up (`--ttl 30s --cull-interval 1s`, audit on); " +
        `a client process keeps ${LIVE_NODES} connections busy with \`GET /v1/health\` and heartbeats of ` +
        `${LIVE_NODES} live nodes meanwhile. Time runs from the reaper's first run (start-up + 1 s) until the ` +
        "database shows every expired lease free (polled every 10 ms).",
    );
    out.push("");
    out.push(
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
    );
    out.push("");
  }
  if (results.add || results.ls) {
    out.push("## Vendor commands");
    out.push("");
    const rows: string[][] = [];
    if (results.add) {
      rows.push([
        "`relay add`, 1 file (fixed cost of the process)",
        `${results.add.baselineSeconds.toFixed(2)} s`,
        "",
      ]);
      for (const run of results.add.runs) {
        rows.push([
          `\`relay add\`, ${fmt(run.files)} minted files in one command`,
          `${run.seconds.toFixed(2)} s${run.ok ? "" : " (FAILED)"}`,
          `${fmt(run.files / run.seconds)} files/s, ${
            fmt(run.argumentBytes / 1024)
          } KiB of arguments`,
        ]);
      }
    }
    if (results.ls) {
      rows.push([
        `\`relay ls --json\`, ${fmt(results.ls.licenses)} licenses`,
        `${results.ls.seconds.toFixed(2)} s${results.ls.ok ? "" : " (FAILED)"}`,
        `${fmt(results.ls.bytes / 2 ** 20, 1)} MiB of output`,
      ]);
    }
    out.push(table(["command", "time", ""], rows, ["l", "r", "l"]));
    out.push("");
  }
  if (results.startup.length > 0 || results.rss) {
    out.push("## Start-up and memory");
    out.push("");
    const rows: string[][] = results.startup.map((s) => [
      `${s.label}${
        s.licenses ? `, ${fmt(s.licenses)} licenses` : ""
      }: spawn → first 200 from /v1/health`,
      `${fmt(s.median)} ms median`,
      s.trials.map((t) => fmt(t)).join(", "),
    ]);
    if (results.rss) {
      const r = results.rss;
      rows.push([
        `RSS, ${fmt(r.licenses)} licenses and ${
          fmt(r.nodes)
        } active nodes, after heartbeats and cycles`,
        `${fmt(r.afterLoad.rssMiB, 1)} MiB`,
        `${fmt(r.atStart.rssMiB, 1)} MiB at start; peak (VmHWM) ${fmt(r.afterLoad.hwmMiB, 1)} MiB`,
      ]);
    }
    out.push(table(["", "", ""], rows, ["l", "r", "l"]));
    out.push("");
  }
  out.push("## Set-up");
  out.push("");
  out.push(
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
  );
  out.push("");
  out.push(METHOD.replaceAll("{C}", String(C)).replaceAll("{generator}", generatorCommand));
  out.push("");
  out.push("<!-- BEGIN NOTES: kept as written when the benchmark rewrites this file -->");
  out.push(notes.trim() === "" ? "" : notes.trim());
  out.push("<!-- END NOTES -->");
  out.push("");
  return out.join("\n");
}

const METHOD = `## How it is measured

- **Server**: the real \`relay serve\`, spawned as \`deno run --allow-read --allow-write --allow-env --allow-net main.ts [--no-audit] --database <tmp> serve --port 0 --bind 127.0.0.1 --strategy <s> --ttl 24h\` (the long TTL keeps the prepared leases live; it changes no cost). Its port is read from its JSON start-up line.
- **Databases** are prepared without the server: licenses are inserted through the product's own \`openStore()\` and \`Store.insertLicense()\` in one transaction, with unique random file bodies framed like Keygen license files (about 3.7 KB, the size of a real one); leases are written directly into \`nodes\` and \`licenses\` (triggers keep \`free_counts\` right). Every configuration starts from a fresh copy, flushed to disk before the server starts.
- **Load**: {generator}. {C} keep-alive connections, each a strictly sequential loop (wrk with one thread per connection, so each connection's claim → heartbeats → release sequence never races itself). Each request is timed by the generator itself (wrk: \`clock_gettime\` in Lua, since wrk 4.1's own histogram adds synthetic "coordinated omission" samples); a rate is answers over the span from the first request sent to the last answer. Every answer's status is counted; the table's last column counts answers that were not 2xx plus server error log lines.
- **Claims** (\`PUT /v1/nodes/<fresh fingerprint>\`, expect 201) each take a license, and wrk's \`-d\` is only a time limit, so each claim run gives every connection a quota that together equals the free licenses; a connection stops (\`wrk.thread:stop()\`) after its quota, and the run after all of them (or the time limit). Then every fingerprint that got an answer is released (\`DELETE\`, expect 204): that is the release measurement. With N=1,000 one round takes a fraction of a second, so rounds repeat (up to 40) until about as many seconds of claims were measured as for N=100,000; their histograms are merged. Claims thus see pools from all free to all leased.
- **Heartbeats** (\`PUT\` of leased fingerprints, expect 202) run on a database where all N licenses are leased, each connection cycling through its share of the N nodes.
- **Ceiling**: \`scripts/bench/ceiling.ts\`, a bare \`Deno.serve\` that answers each request after one upsert into a SQLite table keyed by the path (node:sqlite, WAL, synchronous=FULL, busy_timeout=5000, foreign_keys=ON), driven by the same generator with the same request patterns: fresh paths for claims, a fixed set for heartbeats (also the reference for releases), the cycle pattern for cycles. The ratios in the tables are to this ceiling. Relay commits the lease operations that arrive together in one transaction (group commit), which one upsert per fsync cannot match, so the same script is also run with group commit (\`ceiling, group commit\`): the ceiling of Relay's own design.
- Before each measured run the server answers a second of \`DELETE\`s of unknown fingerprints (404), to warm up V8 and the SQLite cache.

## Reproduce

\`\`\`sh
apt-get install wrk          # optional: without wrk the Deno client is used
deno task bench              # full run, 8–10 minutes on 2 cores; rewrites BENCHMARKS.md
deno task bench --quick      # N = 1,000 only, short runs (about 1 minute), bench-out/BENCHMARKS.quick.md
deno task bench --only reap,startup --out /tmp/b.md     # some sections only
deno task bench --from-json bench-out/results-full.json # the report again, measuring nothing
\`\`\`

Options: \`--connections N\`, \`--load wrk|deno\`, \`--client-processes N\`, \`--tmp-dir DIR\` (put it on the disk the production database will live on: its fsync latency matters), \`--ns 100000\` and \`--strategies fifo,rand\` (leasing runs for these only, for A/B comparisons). Raw results, with every latency histogram, go to \`bench-out/results-<full|quick>.json\`. To see where a server's time goes: \`scripts/bench/profile.ts\` (CPU profile of \`relay serve\` under one load pattern) and \`scripts/bench/breakdown.ts\` (lease operations in-process, each SQL method timed, with what-if options); their headers give the command lines.`;

async function readNotes(path: string): Promise<string> {
  try {
    const text = await Deno.readTextFile(path);
    const begin = text.indexOf("<!-- BEGIN NOTES");
    const end = text.indexOf("<!-- END NOTES -->");
    if (begin < 0 || end < begin) return "";
    return text.slice(text.indexOf("\n", begin) + 1, end);
  } catch {
    return "";
  }
}

/** Renders the report, keeps the notes of the file it replaces, prints it; returns its path. */
export async function writeReport(results: Results, outOption: string | null): Promise<string> {
  const out = outOption ??
    (results.mode === "quick" ? `${REPO}bench-out/BENCHMARKS.quick.md` : `${REPO}BENCHMARKS.md`);
  const generator = results.generator ??
    (results.machine.generator.startsWith("wrk") ? "wrk" : "deno");
  const generatorCommand = generator === "wrk"
    ? "wrk 4.1 (`wrk -t C -c C -d S --timeout 10s -s <generated Lua>`), one thread per connection"
    : `the Deno client of \`scripts/bench/client.ts\` in ${
      results.clientProcesses ?? 2
    } separate processes`;
  const report = renderReport(results, await readNotes(out), generatorCommand);
  await Deno.mkdir(out.slice(0, Math.max(0, out.lastIndexOf("/"))) || ".", { recursive: true });
  await Deno.writeTextFile(out, report);
  // As `deno fmt` would write it (the project checks it), wrapping long lines.
  await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", out],
    cwd: REPO,
    stdout: "null",
    stderr: "null",
  }).output().catch(() => {});
  console.log("");
  console.log(report.slice(0, report.indexOf("## How it is measured")));
  return out;
}
