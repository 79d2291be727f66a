/**
 * Where a loaded `relay serve` spends its time: runs the server under
 * `deno run --cpu-prof` on a benchmark database, drives one load pattern of
 * `scripts/bench.ts` at it, stops it gracefully and summarises the V8 CPU
 * profile by category (SQLite calls, Relay's own code, Deno's HTTP layer,
 * GC, idle) and by function, for the main thread and the checkpoint worker.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-run --allow-net=127.0.0.1 \
 *   scripts/bench/profile.ts --mode claim|heartbeat|release|cycle [--licenses 100000] \
 *   [--strategy fifo|lifo|rand] [--no-audit] [--seconds 6] [--connections 64] \
 *   [--pragma key=value]... [--top 20] [--load wrk|deno]
 * deno run scripts/bench/profile.ts --help
 * ```
 *
 * node:sqlite is synchronous, so time inside SQLite (including each commit's
 * fsync) is charged to the native `exec` (BEGIN, COMMIT, SAVEPOINT) and
 * `get`/`run`/`all` (statements) functions.
 *
 * @module
 */

import { STRATEGIES, type Strategy } from "../../lib/leases.ts";
import {
  CONSOLE,
  oneOf,
  type Parsed,
  parseScriptArgs,
  positiveInteger,
  pragmaList,
  scriptCommand,
  type ScriptOutput,
} from "../command_line.ts";
import { type Generator, GENERATORS, runLoad } from "./load.ts";
import { type LoadPlan, splitEvenly } from "./plan.ts";
import { killAll } from "./procs.ts";
import { startRelay } from "./servers.ts";
import { buildLicenseDb, checkpoint, leaseDirectly, nowSeconds } from "./setup.ts";

const MODES = ["claim", "heartbeat", "release", "cycle"] as const;

/** What the profile was asked to run. */
export interface Args {
  mode: typeof MODES[number];
  licenses: number;
  strategy: Strategy;
  audit: boolean;
  seconds: number;
  connections: number;
  /** `key=value` pragmas for `relay --pragma`. */
  pragmas: string[];
  top: number;
  load: Generator;
}

/** Parses the profile's command line; prints help or the error through `output`. */
export function parseProfileArgs(args: string[], output: ScriptOutput = CONSOLE): Parsed<Args> {
  const command = scriptCommand(
    "scripts/bench/profile.ts",
    "Profiles a loaded relay serve (V8 CPU profile) and summarises where its time goes.",
    output,
  )
    .option(
      "--mode <mode>",
      `the load pattern: ${MODES.join(", ")}`,
      oneOf(MODES, "mode"),
      "heartbeat",
    )
    .option("--licenses <n>", "licenses in the database", positiveInteger, 100_000)
    .option(
      "--strategy <strategy>",
      `how claims choose a license: ${STRATEGIES.join(", ")}`,
      oneOf(STRATEGIES, "strategy"),
      "fifo",
    )
    .option("--no-audit", "write no audit rows")
    .option("--seconds <n>", "length of the load run", positiveInteger, 6)
    .option("--connections <n>", "keep-alive connections", positiveInteger, 64)
    .option("--pragma <key=value>", "extra SQLite pragma of the server, repeatable", pragmaList)
    .option("--top <n>", "functions listed per table", positiveInteger, 20)
    .option(
      "--load <generator>",
      `load generator: ${GENERATORS.join(", ")}`,
      oneOf(GENERATORS, "load generator"),
      "wrk",
    );
  return parseScriptArgs(command, args, (values) => ({
    mode: values.mode as Args["mode"],
    licenses: values.licenses as number,
    strategy: values.strategy as Strategy,
    audit: values.audit as boolean,
    seconds: values.seconds as number,
    connections: values.connections as number,
    pragmas: (values.pragma as string[] | undefined) ?? [],
    top: values.top as number,
    load: values.load as Generator,
  }));
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function category(node: ProfileNode): string {
  const { functionName, url } = node.callFrame;
  if (url === "") {
    if (functionName === "exec") return "SQLite exec: BEGIN, COMMIT (with fsync), SAVEPOINT";
    if (["get", "run", "all", "iterate"].includes(functionName)) return "SQLite statements";
    if (functionName.startsWith("(")) return functionName;
    return "other native (ops, builtins)";
  }
  if (/\/(lib|server|cli)\/[^/]+\.ts$/.test(url) || url.endsWith("/main.ts")) return "Relay code";
  if (url.startsWith("ext:") || url.startsWith("node:")) {
    return "Deno runtime (HTTP, fetch API, timers)";
  }
  return "other JavaScript";
}

/** Prints self time by category and by function, and inclusive time of the hottest functions. */
export function summarise(profile: CpuProfile, top: number): void {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) =>
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  );
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const name = (node: ProfileNode) =>
    `${node.callFrame.functionName || "(anonymous)"} ${
      node.callFrame.url.replace(/^file:\/\/.*?\/(lib|server|cli|scripts)\//, "$1/")
    }${node.callFrame.url ? `:${node.callFrame.lineNumber + 1}` : ""}`;
  const categories = new Map<string, number>();
  const selfByName = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, time] of self) {
    const node = byId.get(id)!;
    categories.set(category(node), (categories.get(category(node)) ?? 0) + time);
    selfByName.set(name(node), (selfByName.get(name(node)) ?? 0) + time);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const key = name(byId.get(at)!);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + time);
    }
  }
  const pct = (time: number) => `${((100 * time) / total).toFixed(1).padStart(5)} %`;
  const busy = total - (categories.get("(idle)") ?? 0);
  console.log(`\n${(total / 1e6).toFixed(2)} s sampled, ${pct(busy).trim()} busy. By category:`);
  for (const [key, time] of [...categories].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${pct(time)}  ${key}`);
  }
  console.log(`\nSelf time, top ${top}:`);
  for (const [key, time] of [...selfByName].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`  ${pct(time)}  ${key}`);
  }
  console.log(`\nInclusive time of Relay's functions, top ${top}:`);
  for (
    const [key, time] of [...inclusive]
      .filter(([key]) => /\s(lib|server)\//.test(key))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
  ) {
    console.log(`  ${pct(time)}  ${key}`);
  }
}

async function main(): Promise<number> {
  const parsed = parseProfileArgs(Deno.args);
  if (parsed.kind === "exit") return parsed.code;
  const args = parsed.options;
  const dir = await Deno.makeTempDir({ prefix: "relay_profile_" });
  try {
    const path = `${dir}/relay.sqlite`;
    const now = nowSeconds();
    await buildLicenseDb(path, args.licenses, now);
    if (args.mode === "heartbeat" || args.mode === "release") {
      leaseDirectly(path, { count: args.licenses, prefix: "n", heartbeatAt: now, now });
    }
    checkpoint(path);
    const server = await startRelay({
      database: path,
      strategy: args.strategy,
      audit: args.audit,
      pragmas: args.pragmas,
      denoFlags: ["--cpu-prof", `--cpu-prof-dir=${dir}`],
    });
    const C = args.connections;
    const plan: LoadPlan = args.mode === "claim"
      ? {
        mode: "claim",
        connections: C,
        seconds: args.seconds,
        prefix: "p-",
        quota: splitEvenly(args.licenses, C),
      }
      : args.mode === "cycle"
      ? { mode: "cycle", connections: C, seconds: args.seconds, prefix: "y-" }
      : {
        mode: args.mode,
        connections: C,
        seconds: args.seconds,
        set: { kind: "range", prefix: "n", total: args.licenses },
      };
    const result = await runLoad(args.load, server.port, plan, { workDir: dir });
    console.log(
      `${args.mode}, ${args.licenses.toLocaleString("en-US")} licenses, ${args.strategy}, audit ${
        args.audit ? "on" : "off"
      }${args.pragmas.length ? `, ${args.pragmas.join(" ")}` : ""}: ${result.rate.toFixed(0)}/s, ` +
        `p50 ${result.p50} ms, p99 ${result.p99} ms, statuses ${JSON.stringify(result.statuses)}`,
    );
    // Stopped gracefully, V8 writes the profiles.
    await server.stop(30_000);
    // One profile per thread: the main (JavaScript) thread, and the checkpoint worker's.
    const profiles: { thread: string; profile: CpuProfile }[] = [];
    for (const entry of Deno.readDirSync(dir)) {
      if (!entry.name.endsWith(".cpuprofile")) continue;
      const profile: CpuProfile = JSON.parse(await Deno.readTextFile(`${dir}/${entry.name}`));
      const worker = profile.nodes.some((node) =>
        node.callFrame.url.endsWith("checkpoint_worker.ts")
      );
      profiles.push({ thread: worker ? "checkpoint worker thread" : "main thread", profile });
    }
    if (profiles.length === 0) throw new Error("relay wrote no CPU profile");
    profiles.sort((a, b) => a.thread.localeCompare(b.thread)).reverse();
    for (const { thread, profile } of profiles) {
      console.log(`\n== ${thread} ==`);
      summarise(profile, args.top);
    }
  } finally {
    await killAll();
    await Deno.remove(dir, { recursive: true });
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main());
