import assert from "node:assert/strict";
import { STRATEGIES } from "../../lib/leases.ts";
import type { ScriptOutput } from "../../scripts/command_line.ts";
import {
  type BenchOptions,
  FULL,
  parseBenchArgs,
  profileOf,
  QUICK,
  SECTIONS,
} from "../../scripts/bench/options.ts";

function captured(): ScriptOutput & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, print: (text) => out.push(text), printError: (text) => err.push(text) };
}

/** The options of `args`, failing the test if there are none. */
function optionsOf(args: string[]): BenchOptions {
  const parsed = parseBenchArgs(args, captured());
  assert.equal(parsed.kind, "run", args.join(" "));
  return (parsed as { options: BenchOptions }).options;
}

Deno.test("parseBenchArgs() defaults to a full run of every section at 64 connections", () => {
  assert.deepEqual(optionsOf([]), {
    quick: false,
    connections: 64,
    load: "auto",
    out: null,
    tmpDir: undefined,
    only: null,
    clientProcesses: 2,
    fromJson: null,
    ns: null,
    strategies: null,
    postgres: null,
  });
});

Deno.test("parseBenchArgs() reads every flag, also as --flag=value", () => {
  assert.deepEqual(
    optionsOf([
      "--quick",
      "--connections=16",
      "--load",
      "deno",
      "--client-processes",
      "3",
      "--out",
      "/tmp/b.md",
      "--tmp-dir=/var/tmp",
      "--only",
      "reap, startup,",
      "--ns",
      "1000,100000",
      "--strategies",
      "fifo, rand",
      "--from-json",
      "bench-out/results-full.json",
      "--postgres=postgres://postgres@127.0.0.1:55432/postgres",
    ]),
    {
      quick: true,
      connections: 16,
      load: "deno",
      out: "/tmp/b.md",
      tmpDir: "/var/tmp",
      only: new Set(["reap", "startup"]),
      clientProcesses: 3,
      fromJson: "bench-out/results-full.json",
      ns: [1000, 100_000],
      strategies: ["fifo", "rand"],
      postgres: "postgres://postgres@127.0.0.1:55432/postgres",
    },
  );
});

Deno.test("parseBenchArgs() refuses bad values with exit code 2 and says why", async (t) => {
  const cases: [string[], string][] = [
    [
      ["--connections", "0"],
      "'--connections <n>' argument '0' is invalid. Expected a positive integer",
    ],
    [["--client-processes", "two"], "argument 'two' is invalid. Expected a positive integer"],
    [["--load", "ab"], `Unknown load generator "ab"; one of auto, wrk, deno`],
    [["--only", "reap,nope"], `Unknown section "nope"; one of ${SECTIONS.join(", ")}`],
    [["--ns", "1000,"], "argument '1000,' is invalid. Expected a positive integer"],
    [["--strategies", "fifo,best"], `Unknown strategy "best"; one of fifo, lifo, rand`],
    [["--out"], "error: option '--out <file>' argument missing"],
    [
      ["--postgres", "127.0.0.1:5432"],
      `argument '127.0.0.1:5432' is invalid. Expected a postgres:// URL, got "127.0.0.1:5432"`,
    ],
    [["--fast"], "error: unknown option '--fast'"],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), () => {
      const output = captured();
      assert.deepEqual(parseBenchArgs(args, output), { kind: "exit", code: 2 });
      assert.ok(output.err.join("\n").includes(message), output.err.join("\n"));
    });
  }
});

Deno.test("parseBenchArgs() prints every flag for --help and exits 0", () => {
  const output = captured();
  assert.deepEqual(parseBenchArgs(["--help"], output), { kind: "exit", code: 0 });
  const help = output.out.join("\n");
  assert.match(help, /^Usage: deno task bench \[options\]/);
  for (
    const flag of [
      "--quick",
      "--connections <n>",
      "--load <generator>",
      "--client-processes <n>",
      "--out <file>",
      "--tmp-dir <dir>",
      "--only <section,...>",
      "--ns <n,...>",
      "--strategies <s,...>",
      "--from-json <file>",
      "--postgres <admin-url>",
      "-h, --help",
    ]
  ) {
    assert.ok(help.includes(`  ${flag} `), flag);
  }
  // commander wraps the description at 100 columns.
  assert.ok(help.replace(/\s+/g, " ").includes(SECTIONS.join(", ")));
});

Deno.test("profileOf() picks the full or quick profile, narrowed by --ns and --strategies", () => {
  assert.deepEqual(FULL.strategies, [...STRATEGIES]);
  assert.deepEqual(QUICK.strategies, [...STRATEGIES]);
  assert.deepEqual(profileOf(optionsOf([])), FULL);
  assert.deepEqual(profileOf(optionsOf(["--quick"])), QUICK);
  const narrowed = profileOf(optionsOf(["--ns", "100000", "--strategies", "rand"]));
  assert.deepEqual(narrowed, { ...FULL, ns: [100_000], strategies: ["rand"] });
});

Deno.test("--only postgres runs the postgres section alone: N=1,000 with --quick, 1 and 3 replicas", () => {
  assert.ok(SECTIONS.includes("postgres"));
  const options = optionsOf(["--quick", "--only", "postgres"]);
  assert.deepEqual(options.only, new Set(["postgres"]));
  assert.equal(options.postgres, null);
  assert.deepEqual(profileOf(options).postgres, { n: 1_000, replicas: [1, 3] });
  assert.deepEqual(profileOf(optionsOf([])).postgres, { n: 100_000, replicas: [1, 3] });
  // The full run includes it.
  assert.equal(optionsOf([]).only, null);
});
