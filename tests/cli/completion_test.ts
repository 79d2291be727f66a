/**
 * `relay completion bash` in a real bash: commands, flags, `--strategy`
 * values and the pools of a real database (through the hidden
 * `relay __complete pools`, run as a real process); the command itself and
 * its help; and a program tree with commands the generator has never seen.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Command, Option } from "commander";
import { bashScript } from "../../cli/completion/bash.ts";
import { completionModel } from "../../cli/completion/model.ts";
import { flagOption, FLAGS } from "../../cli/flags.ts";
import { STRATEGIES } from "../../lib/strategy.ts";
import { addMinted, dbPath, exists, tempDir } from "../helpers.ts";
import { bashCompletions, completionScript, relayOnPath } from "./completion_support.ts";
import { runRelay } from "./support.ts";

Deno.test("relay completion bash completes commands, flags and --strategy values in bash", async (t) => {
  await using dir = await tempDir();
  const script = await completionScript(dir.path, "bash");
  const shell = { cwd: dir.path, env: await relayOnPath(dir.path) };
  const complete = (...words: string[]) => bashCompletions(script, ["relay", ...words], shell);

  await t.step("relay s<TAB>: serve and stat", async () => {
    assert.deepEqual((await complete("s")).sort(), ["serve", "stat"]);
  });
  await t.step("relay <TAB>: every command of relay --help, and no hidden one", async () => {
    const help = await runRelay(["--help"], { cwd: dir.path });
    // `  name [options]   description`; wrapped descriptions are indented further.
    const listed = help.stdout.split("Commands:\n")[1].split("\n")
      .flatMap((line) => /^ {2}(\S+)/.exec(line)?.[1] ?? []);
    assert.ok(listed.includes("completion"), help.stdout);
    assert.deepEqual((await complete("")).sort(), listed.sort());
    assert.ok(!(await complete("_")).includes("__complete"));
  });
  await t.step("relay serve --st<TAB>: --strategy", async () => {
    assert.deepEqual(await complete("serve", "--st"), ["--strategy"]);
  });
  await t.step("relay serve --strategy <TAB>: the strategies of lib/strategy.ts", async () => {
    assert.deepEqual(await complete("serve", "--strategy", ""), [...STRATEGIES]);
    assert.deepEqual(await complete("serve", "--strategy", ""), ["fifo", "lifo", "rand"]);
    assert.deepEqual(await complete("serve", "--strategy", "l"), ["lifo"]);
  });
  await t.step("relay serve --strategy=<TAB> (bash splits at =)", async () => {
    assert.deepEqual(await complete("serve", "--strategy", "="), ["fifo", "lifo", "rand"]);
    assert.deepEqual(await complete("serve", "--strategy", "=", "r"), ["rand"]);
  });
  await t.step("global flags before the command, values skipped", async () => {
    assert.deepEqual(
      await complete("-vv", "--database", "x.sqlite", "serve", "-p", "7000", "--strategy", "f"),
      ["fifo"],
    );
    assert.deepEqual(await complete("--database", "x.sqlite", "se"), ["serve"]);
  });
  await t.step("flags of the command and the global ones", async () => {
    const flags = await complete("serve", "--");
    for (const flag of ["--port", "--ttl", "--pool", "--database", "--verbose", "--help"]) {
      assert.ok(flags.includes(flag), `${flag} in ${flags}`);
    }
    assert.ok(!flags.includes("--file"), "no flag of add");
    assert.deepEqual(await complete("add", "--key-"), ["--key-file"]);
    assert.deepEqual(await complete("--no-"), ["--no-audit", "--no-color"]);
  });
  await t.step("relay completion <TAB>: the shells", async () => {
    assert.deepEqual(await complete("completion", ""), ["bash", "zsh", "fish", "powershell"]);
  });
  await t.step("a value with nothing to offer (--port) offers nothing", async () => {
    assert.deepEqual(await complete("serve", "--port", ""), []);
  });
  await t.step("--database <TAB>: file names", async () => {
    await Deno.writeTextFile(`${dir.path}/relay-a.sqlite`, "");
    assert.deepEqual(await complete("--database", "relay-"), ["relay-a.sqlite"]);
  });
});

Deno.test("relay serve --pool <TAB> offers the pools of the database on the line, or RELAY_DATABASE", async (t) => {
  await using dir = await tempDir();
  await addMinted(dir.path, 1, { pool: "prod" });
  await addMinted(dir.path, 1, { pool: "staging" });
  await addMinted(dir.path, 1, { pool: "prod-eu" });
  await addMinted(dir.path, 1, { pool: "us west" });
  const script = await completionScript(dir.path, "bash");
  const database = dbPath(dir.path);
  const env = await relayOnPath(dir.path);
  const complete = (words: string[], extra: Record<string, string> = {}) =>
    bashCompletions(script, ["relay", ...words], { cwd: dir.path, env: { ...env, ...extra } });

  await t.step("--database on the line, before the command", async () => {
    assert.deepEqual(await complete(["--database", database, "serve", "--pool", ""]), [
      "prod",
      "prod-eu",
      "staging",
      "us\\ west",
    ]);
  });
  await t.step("--database=PATH after the command; a prefix", async () => {
    assert.deepEqual(
      await complete(["ls", "--database", "=", database, "--pool", "pro"]),
      ["prod", "prod-eu"],
    );
  });
  await t.step("RELAY_DATABASE", async () => {
    assert.deepEqual(
      await complete(["add", "--pool", "s"], { RELAY_DATABASE: database }),
      ["staging"],
    );
  });
  await t.step("the default ./relay.sqlite of the folder the shell is in", async () => {
    assert.deepEqual(await complete(["serve", "--pool", "st"]), ["staging"]);
  });
  await t.step("a relative --database, from the shell's folder", async () => {
    assert.deepEqual(
      await complete(["serve", "--database", "./relay.sqlite", "--pool", "prod-"]),
      ["prod-eu"],
    );
  });
  await t.step("a missing database: nothing offered, none created", async () => {
    const missing = `${dir.path}/missing.sqlite`;
    assert.deepEqual(await complete(["--database", missing, "serve", "--pool", ""]), []);
    assert.deepEqual(
      await complete(["serve", "--pool", ""], { RELAY_DATABASE: missing }),
      [],
    );
    assert.equal(await exists(missing), false);
  });
});

Deno.test("relay __complete pools prints pool names, and nothing where there is no database", async (t) => {
  await using dir = await tempDir();
  await addMinted(dir.path, 1, { pool: "b" });
  await addMinted(dir.path, 1, { pool: "a" });
  await addMinted(dir.path, 1);

  await t.step("the pools, sorted, one a line", async () => {
    const result = await runRelay(["__complete", "pools"], { cwd: dir.path });
    assert.deepEqual(result, { code: 0, stdout: "a\nb\n", stderr: "" });
  });
  await t.step("a missing database: no output, exit 0, no file", async () => {
    const result = await runRelay(["__complete", "pools", "--database", "nope.sqlite"], {
      cwd: dir.path,
    });
    assert.deepEqual(result, { code: 0, stdout: "", stderr: "" });
    assert.equal(await exists(`${dir.path}/nope.sqlite`), false);
  });
  await t.step("a file that is not a database: no output, left as it was", async () => {
    await Deno.writeTextFile(`${dir.path}/notes.txt`, "not sqlite\n");
    const result = await runRelay(["__complete", "pools", "--database", "notes.txt"], {
      cwd: dir.path,
    });
    assert.deepEqual(result, { code: 0, stdout: "", stderr: "" });
    assert.equal(await Deno.readTextFile(`${dir.path}/notes.txt`), "not sqlite\n");
  });
  await t.step("hidden from relay --help", async () => {
    const help = await runRelay(["--help"], { cwd: dir.path });
    assert.ok(!help.stdout.includes("__complete"), help.stdout);
  });
});

Deno.test("relay completion: the shell argument and the help on installing each script", async (t) => {
  await using dir = await tempDir();
  await t.step("--help says how to load each shell's script", async () => {
    const help = await runRelay(["completion", "--help"], { cwd: dir.path });
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: relay completion \[options\] <shell>/);
    for (
      const line of [
        "source <(relay completion bash)",
        "relay completion bash > /etc/bash_completion.d/relay",
        'relay completion zsh > "${fpath[1]}/_relay"',
        "relay completion fish > ~/.config/fish/completions/relay.fish",
        "relay completion powershell | Out-String | Invoke-Expression",
      ]
    ) {
      assert.ok(help.stdout.includes(line), line);
    }
  });
  await t.step("no shell, or an unknown one: a usage error", async () => {
    for (const args of [["completion"], ["completion", "tcsh"]]) {
      const result = await runRelay(args, { cwd: dir.path });
      assert.equal(result.code, 2, args.join(" "));
      assert.equal(result.stdout, "");
      assert.match(result.stderr, /^error: /);
    }
  });
  await t.step("listed by relay --help", async () => {
    const help = await runRelay(["--help"], { cwd: dir.path });
    assert.match(help.stdout, /completion <shell>\s+print a shell completion script/);
  });
});

Deno.test("the bash script completes commands and flags it was never told about", async () => {
  // A program tree as other commands will make it: nested commands, a --pool
  // flag from the table, choices, a path flag.
  const program = new Command("relay").addOption(flagOption(FLAGS.global.database));
  program.command("fingerprint").description("print this machine's fingerprint")
    .addOption(new Option("--format <format>", "output format").choices(["text", "json"]));
  const audit = program.command("audit").description("read the audit log");
  audit.command("ls").description("list audit records")
    .addOption(flagOption(FLAGS.ls.pool))
    .addOption(new Option("--out <path>", "write them here"));
  audit.command("prune").description("delete old records");
  await using dir = await tempDir();
  const script = `${dir.path}/relay.bash`;
  await Deno.writeTextFile(script, bashScript(completionModel(program)));
  const shell = { cwd: dir.path, env: await relayOnPath(dir.path) };
  const complete = (...words: string[]) => bashCompletions(script, ["relay", ...words], shell);

  assert.deepEqual(await complete("f"), ["fingerprint"]);
  assert.deepEqual(await complete("fingerprint", "--format", ""), ["text", "json"]);
  // Commander gives a command with subcommands a `help` command.
  assert.deepEqual(await complete("audit", ""), ["ls", "prune", "help"]);
  assert.deepEqual(await complete("audit", "ls", "--p"), ["--pool"]);
  assert.deepEqual(await complete("audit", "ls", "--"), [
    "--pool",
    "--out",
    "--database",
    "--help",
  ]);
  await Deno.writeTextFile(`${dir.path}/records.txt`, "");
  assert.deepEqual(await complete("audit", "ls", "--out", "rec"), ["records.txt"]);
});
