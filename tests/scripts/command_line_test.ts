import assert from "node:assert/strict";
import {
  commaList,
  integerAtLeast,
  oneOf,
  parseScriptArgs,
  positiveInteger,
  pragmaList,
  scriptCommand,
  type ScriptOutput,
} from "../../scripts/command_line.ts";
import { InvalidArgumentError } from "commander";

/** A script output that keeps what was printed. */
function captured(): ScriptOutput & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, print: (text) => out.push(text), printError: (text) => err.push(text) };
}

/** A small script: `--count <n>` (positive), `--mode a|b`, `--pragma` repeatable, `--flag`. */
function parse(args: string[], output = captured()) {
  const command = scriptCommand("demo", "A demo script.", output)
    .option("--count <n>", "how many", positiveInteger, 1)
    .option("--mode <mode>", "a or b", oneOf(["a", "b"], "mode"), "a")
    .option("--pragma <key=value>", "pragma", pragmaList)
    .option("--flag", "a flag");
  return parseScriptArgs(command, args, (values) => {
    if (values.flag && values.mode === "b") {
      throw new InvalidArgumentError(`--flag conflicts with --mode "b"`);
    }
    return values;
  });
}

Deno.test("parseScriptArgs() returns the options with their defaults", () => {
  assert.deepEqual(parse([]), { kind: "run", options: { count: 1, mode: "a" } });
  assert.deepEqual(
    parse(["--count=3", "--mode", "b", "--pragma", "a=1", "--pragma", " b=2 "]),
    { kind: "run", options: { count: 3, mode: "b", pragma: ["a=1", "b=2"] } },
  );
});

Deno.test("parseScriptArgs() prints the help on stdout and exits 0 for --help and -h", () => {
  for (const flag of ["--help", "-h"]) {
    const output = captured();
    assert.deepEqual(parse([flag], output), { kind: "exit", code: 0 });
    const help = output.out.join("\n");
    assert.match(help, /^Usage: demo \[options\]/);
    assert.match(help, /--count <n> +how many \(default: 1\)/);
    assert.match(help, /-h, --help +print this help/);
    assert.deepEqual(output.err, []);
  }
});

Deno.test("parseScriptArgs() exits 2 with the reason on stderr for a bad command line", async (t) => {
  const cases: [string[], string][] = [
    [
      ["--count", "0"],
      `error: option '--count <n>' argument '0' is invalid. Expected a positive integer`,
    ],
    [["--mode", "c"], `argument 'c' is invalid. Unknown mode "c"; one of a, b`],
    [["--pragma", "nope"], `Invalid pragma "nope": expected key=value`],
    [["--count"], "error: option '--count <n>' argument missing"],
    [["--bogus"], "error: unknown option '--bogus'"],
    [["extra"], "error: too many arguments"],
    [["--flag", "--mode", "b"], `error: --flag conflicts with --mode "b"`],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), () => {
      const output = captured();
      assert.deepEqual(parse(args, output), { kind: "exit", code: 2 });
      const stderr = output.err.join("\n");
      assert.ok(stderr.includes(message), stderr);
      assert.match(stderr, /\(run with --help for usage\)$/);
      assert.deepEqual(output.out, []);
    });
  }
});

Deno.test("integerAtLeast() and commaList() read whole numbers and lists of them", () => {
  assert.equal(integerAtLeast(0)("0"), 0);
  assert.deepEqual(commaList(positiveInteger)("1000,100000"), [1000, 100_000]);
  for (const text of ["", " ", "1.5", "-1", "x", "1e400"]) {
    assert.throws(() => integerAtLeast(0)(text), InvalidArgumentError, JSON.stringify(text));
  }
  assert.throws(() => commaList(positiveInteger)("5,0"), /Expected a positive integer/);
});
