/**
 * The flag table (`cli/flags.ts`) against what users read: the README's flag
 * tables and `--help`; and flag over env var over default, for every flag.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { envSwitch, FLAGS, type FlagSpec, flagValue, helpText, isSwitch } from "../../cli/flags.ts";
import { tempDir } from "../helpers.ts";
import { runRelay } from "./support.ts";

const README = fileURLToPath(new URL("../../README.md", import.meta.url));

type Section = keyof typeof FLAGS;

/** The README heading above each section's flag table. */
const HEADINGS: Record<Section, string> = {
  global: "## Commands",
  nodeLock: "### Running a node-locked build",
  add: "### `relay add`",
  del: "### `relay del`",
  ls: "### `relay ls`",
  stat: "### `relay stat`",
  leases: "### `relay leases`",
  release: "### `relay release`",
  audit: "### `relay audit`",
  serve: "### `relay serve`",
  backup: "### `relay backup`",
  doctor: "### `relay doctor`",
  migrate: "### `relay migrate`",
};

/** Commander's own flags, which the README's global table lists too. */
const BUILT_IN = new Set(["--help", "-h", "--version"]);

function specsOf(section: Section): FlagSpec[] {
  return Object.values(FLAGS[section]);
}

/** `--port` and `-p` of `-p, --port <port>`. */
function namesOf(spec: FlagSpec): string[] {
  return spec.flags.split(/[ ,]+/).filter((token) => token.startsWith("-"));
}

/** The contents of each `code span` in a cell, `\|` unescaped. */
function codeSpans(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1].replaceAll("\\|", "|"));
}

/** The first table under `heading`, as header cells and rows of cells. */
function readmeTable(readme: string, heading: string): { header: string[]; rows: string[][] } {
  const lines = readme.split("\n");
  const start = lines.indexOf(heading);
  assert.ok(start >= 0, `README has the heading ${heading}`);
  const table: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    if (/^#{2,3} /.test(line)) break;
    if (line.startsWith("|")) {
      // Cells split on `|`, except the escaped `\|` inside a code span.
      table.push(line.split(/(?<!\\)\|/).slice(1, -1).map((cell) => cell.trim()));
    } else if (table.length > 0) break;
  }
  assert.ok(table.length > 2, `a flag table under ${heading}`);
  return { header: table[0], rows: table.slice(2) };
}

Deno.test("the README's flag tables agree with the flag table of cli/flags.ts", async (t) => {
  const readme = await Deno.readTextFile(README);
  for (const [section, heading] of Object.entries(HEADINGS) as [Section, string][]) {
    await t.step(heading, () => {
      const { header, rows } = readmeTable(readme, heading);
      const column = (title: string) => header.indexOf(title);
      const [flagColumn, envColumn, defaultColumn] = ["flag", "env var", "default"].map(column);
      assert.ok(flagColumn >= 0, `a "flag" column: ${header}`);
      const specs = specsOf(section);
      const documented = new Set<FlagSpec>();
      for (const row of rows) {
        const names = codeSpans(row[flagColumn]).map((span) => span.split(" ")[0])
          .filter((name) => !BUILT_IN.has(name));
        if (names.length === 0) continue;
        const rowSpecs = names.filter((name) => name.startsWith("--")).map((name) => {
          const spec = specs.find((spec) => namesOf(spec).includes(name));
          assert.ok(spec, `the README lists ${name}, which the table lacks in ${section}`);
          documented.add(spec);
          return spec;
        });
        const where = `README row ${row[flagColumn]}`;
        assert.deepEqual(
          names.filter((name) => !name.startsWith("--")).sort(),
          rowSpecs.flatMap(namesOf).filter((name) => !name.startsWith("--")).sort(),
          `${where}: short flags`,
        );
        const env = rowSpecs.flatMap((spec) => spec.env);
        if (envColumn < 0) {
          assert.deepEqual(env, [], `${where}: the README has no env var column`);
        } else {
          // `RELAY_NO_AUDIT=1` names RELAY_NO_AUDIT; `-vv` in the cell is no variable.
          const readmeEnv = codeSpans(row[envColumn]).map((span) => span.split("=")[0])
            .filter((name) => /^[A-Z][A-Z0-9_]*$/.test(name));
          assert.deepEqual(readmeEnv, env, `${where}: env vars, in order`);
        }
        const defaults = rowSpecs.flatMap((spec) => spec.default ?? []);
        if (defaultColumn < 0) {
          assert.deepEqual(defaults, [], `${where}: the README has no default column`);
        } else {
          assert.deepEqual(codeSpans(row[defaultColumn]), defaults, `${where}: default`);
        }
      }
      const missing = specs.filter((spec) => !documented.has(spec)).map((spec) => spec.flags);
      assert.deepEqual(missing, [], `flags of ${section} the README does not list`);
    });
  }
});

Deno.test("relay --help shows every flag of the table with its env var and default", async (t) => {
  await using dir = await tempDir();
  const sections: [Section, string[]][] = [
    ["global", ["--help"]],
    ["add", ["add", "--help"]],
    ["del", ["del", "--help"]],
    ["ls", ["ls", "--help"]],
    ["stat", ["stat", "--help"]],
    ["leases", ["leases", "--help"]],
    ["release", ["release", "--help"]],
    ["audit", ["audit", "--help"]],
    ["serve", ["serve", "--help"]],
    ["backup", ["backup", "--help"]],
    ["doctor", ["doctor", "--help"]],
    ["migrate", ["migrate", "--help"]],
  ];
  for (const [section, args] of sections) {
    await t.step(args.join(" "), async () => {
      const result = await runRelay(args, { cwd: dir.path });
      assert.equal(result.code, 0, result.stderr);
      // Help wraps long lines; compare with the whitespace folded.
      const help = result.stdout.replace(/\s+/g, " ");
      for (const spec of specsOf(section)) {
        assert.ok(help.includes(`${spec.flags} ${helpText(spec)}`), `${spec.flags} in ${help}`);
      }
    });
  }

  await t.step("the suffixes as the reference Relay writes them", async () => {
    const help = async (args: string[]) =>
      (await runRelay([...args, "--help"], { cwd: dir.path })).stdout.replace(/\s+/g, " ");
    const global = await help([]);
    for (
      const suffix of ["[$RELAY_DATABASE=./relay.sqlite]", "[$RELAY_NO_AUDIT=1]", "[$DEBUG=1]"]
    ) {
      assert.ok(global.includes(suffix), suffix);
    }
    const serve = await help(["serve"]);
    for (
      const suffix of [
        "[$RELAY_PORT=6349]",
        "[$RELAY_ADDR=0.0.0.0]",
        "[$RELAY_LEASE_TTL=60s]",
        "[$RELAY_CULL_INTERVAL=15s]",
        "[$RELAY_STRATEGY=fifo]",
        "[$RELAY_NO_HEARTBEATS=1]",
        "[$RELAY_POOL]",
      ]
    ) {
      assert.ok(serve.includes(suffix), suffix);
    }
    assert.ok((await help(["ls"])).includes("[$RELAY_PLAIN=1]"));
    // A flag without an env var has no suffix.
    assert.ok((await help(["add"])).includes("separate paths with commas --key <key>"));
  });
});

Deno.test("flagValue() takes the flag over its env vars over its default, for every flag", async (t) => {
  for (const [section, flags] of Object.entries(FLAGS)) {
    for (const spec of Object.values(flags) as FlagSpec[]) {
      if (isSwitch(spec)) continue;
      await t.step(`${section} ${spec.flags}`, () => {
        const allSet = Object.fromEntries(spec.env.map((name, i) => [name, `env${i}`]));
        assert.equal(flagValue(spec, "given", allSet), "given");
        assert.equal(flagValue(spec, undefined, {}), spec.default);
        for (const [i, name] of spec.env.entries()) {
          // Each env var counts when the ones before it are unset or empty.
          const before = Object.fromEntries(spec.env.slice(0, i).map((other) => [other, ""]));
          assert.equal(flagValue(spec, undefined, { ...before, [name]: "v" }), "v", name);
          assert.equal(
            flagValue(spec, undefined, { ...allSet, ...before }),
            `env${i}`,
            `${name} over the ones after it`,
          );
        }
        assert.equal(
          flagValue(spec, undefined, Object.fromEntries(spec.env.map((name) => [name, ""]))),
          spec.default,
          "empty env vars are unset",
        );
      });
    }
  }
});

Deno.test("envSwitch() turns a switch on by any of its env vars being true", async (t) => {
  for (const [section, flags] of Object.entries(FLAGS)) {
    for (const spec of Object.values(flags) as FlagSpec[]) {
      if (!isSwitch(spec) || spec.env.length === 0) continue;
      await t.step(`${section} ${spec.flags}`, () => {
        assert.equal(envSwitch(spec, {}), false);
        for (const name of spec.env) {
          for (const on of ["1", "true", "YES", "on"]) {
            assert.equal(envSwitch(spec, { [name]: on }), true, `${name}=${on}`);
          }
          for (const off of ["", "0", "false", "no"]) {
            assert.equal(envSwitch(spec, { [name]: off }), false, `${name}=${off}`);
          }
        }
      });
    }
  }
});
