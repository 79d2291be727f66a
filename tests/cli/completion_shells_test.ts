/**
 * `relay completion zsh|fish|powershell`: each script names every command,
 * passes its shell's syntax check and, in zsh and fish, completes commands,
 * flags, `--strategy` values and a real database's pools, where the shell is
 * installed (`.ci/run` installs zsh and fish; PowerShell is checked where
 * `pwsh` is found).
 *
 * @module
 */

import assert from "node:assert/strict";
import { addMinted, dbPath, tempDir } from "../helpers.ts";
import { completionScript, installed, relayOnPath, runShell } from "./completion_support.ts";

const COMMANDS = ["add", "del", "ls", "stat", "serve", "version", "completion"];

/**
 * zsh's completion builtins replaced by functions that print what they are
 * given, filtered by the prefix at the cursor as zsh would: the `_relay`
 * function then runs in a real zsh without a terminal.
 */
const ZSH_HARNESS = `
compdef() { :; }
source "$1"; shift
compadd() {
  [[ $1 == -- ]] && shift
  local word
  for word in "$@"; do [[ $word == "$PREFIX"* ]] && print -r -- "$word"; done
}
_describe() {
  local item
  for item in "\${(@P)\${@[-1]}}"; do
    item=\${item%%:*}
    [[ $item == "$PREFIX"* ]] && print -r -- "$item"
  done
}
_files() { print -r -- "(files)"; }
_message() { :; }
compset() { PREFIX=\${PREFIX#*=}; }
words=("$@"); CURRENT=$#; PREFIX=\${words[CURRENT]}
_relay
`;

Deno.test("relay completion zsh: zsh -n passes, compinit loads it, and it completes", async (t) => {
  await using dir = await tempDir();
  await addMinted(dir.path, 1, { pool: "prod" });
  await addMinted(dir.path, 1, { pool: "staging" });
  const script = await completionScript(dir.path, "zsh");
  const text = await Deno.readTextFile(script);
  assert.ok(text.startsWith("#compdef relay\n"), "a completion function file for $fpath");
  for (const command of COMMANDS) assert.ok(text.includes(`'${command}'`), command);
  if (!(await installed("zsh"))) return;

  const env = await relayOnPath(dir.path);
  const shell = { cwd: dir.path, env };
  await t.step("zsh -n", async () => {
    await runShell("zsh", ["-n", script], shell);
  });
  await t.step("sourced after compinit, it completes relay", async () => {
    const out = await runShell("zsh", [
      "-fc",
      'autoload -U compinit && compinit -u -D && source "$1" && print -r -- "$_comps[relay]"',
      "zsh",
      script,
    ], shell);
    assert.equal(out, "_relay\n");
  });
  const complete = async (...words: string[]) =>
    (await runShell("zsh", ["-fc", ZSH_HARNESS, "zsh", script, "relay", ...words], shell))
      .split("\n").filter(Boolean);
  await t.step("commands, flags, choices, pools", async () => {
    assert.deepEqual((await complete("s")).sort(), ["serve", "stat"]);
    assert.deepEqual(await complete("serve", "--st"), ["--strategy"]);
    assert.deepEqual(await complete("serve", "--strategy", ""), ["fifo", "lifo", "rand"]);
    assert.deepEqual(await complete("serve", "--strategy=l"), ["lifo"]);
    assert.deepEqual(await complete("completion", ""), ["bash", "zsh", "fish", "powershell"]);
    assert.deepEqual(await complete("--database", ""), ["(files)"]);
    assert.deepEqual(await complete("--database", dbPath(dir.path), "serve", "--pool", ""), [
      "prod",
      "staging",
    ]);
    assert.deepEqual(await complete("ls", "--pool", "st"), ["staging"]);
    assert.deepEqual(await complete("add", "--file", ""), ["(files)"]);
  });
});

Deno.test("relay completion fish: fish -n passes and complete -C completes", async (t) => {
  await using dir = await tempDir();
  await addMinted(dir.path, 1, { pool: "prod" });
  await addMinted(dir.path, 1, { pool: "staging" });
  const script = await completionScript(dir.path, "fish");
  const text = await Deno.readTextFile(script);
  for (const command of COMMANDS) assert.ok(text.includes(`-a '${command}'`), command);
  if (!(await installed("fish"))) return;

  const shell = { cwd: dir.path, env: await relayOnPath(dir.path) };
  await t.step("fish -n", async () => {
    await runShell("fish", ["-n", script], shell);
  });
  const complete = async (line: string) =>
    (await runShell("fish", [
      "-c",
      // Without the descriptions; `string replace` fails when no line had one.
      'source $argv[1]; complete -C $argv[2] | string replace -r "\\t.*" ""; true',
      script,
      line,
    ], shell)).split("\n").filter(Boolean);
  await t.step("commands, flags, choices, pools", async () => {
    assert.deepEqual((await complete("relay s")).sort(), ["serve", "stat"]);
    assert.deepEqual(await complete("relay serve --st"), ["--strategy"]);
    assert.deepEqual(await complete("relay serve --strategy "), ["fifo", "lifo", "rand"]);
    assert.deepEqual(await complete("relay -vv serve -p 7000 --strategy r"), ["rand"]);
    assert.deepEqual(
      (await complete("relay completion ")).sort(),
      ["bash", "fish", "powershell", "zsh"],
    );
    assert.deepEqual(
      await complete(`relay --database ${dbPath(dir.path)} serve --pool `),
      ["prod", "staging"],
    );
    assert.deepEqual(await complete("relay ls --pool st"), ["staging"]);
    assert.deepEqual(await complete("relay --database missing.sqlite serve --pool "), []);
  });
});

Deno.test("relay completion powershell registers a native completer naming every command", async () => {
  await using dir = await tempDir();
  const script = await completionScript(dir.path, "powershell");
  const text = await Deno.readTextFile(script);
  assert.match(text, /^Register-ArgumentCompleter -Native -CommandName 'relay' -ScriptBlock \{$/m);
  for (const command of COMMANDS) assert.match(text, new RegExp(`'${command}\\t`), command);
  assert.match(text, /'--strategy\tchoices:fifo lifo rand\t/);
  assert.match(text, /'--pool\tpools\t/);
  if (!(await installed("pwsh"))) return;
  const parse = "$errors = $null; " +
    `[System.Management.Automation.Language.Parser]::ParseFile('${
      script.replaceAll("'", "''")
    }', [ref]$null, [ref]$errors) | Out-Null; ` +
    "if ($errors) { $errors | ForEach-Object { $_.ToString() }; exit 1 }";
  await runShell("pwsh", ["-NoProfile", "-NonInteractive", "-Command", parse], {
    cwd: dir.path,
    env: await relayOnPath(dir.path),
  });
});
