import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { fileURLToPath as fromFileUrl } from "node:url";
import { compileArgs, parseCompileArgs, TARGETS, WORKER_MODULES } from "../scripts/compile.ts";
import { RELAY_PERMISSIONS } from "../scripts/permissions.ts";
import { childEnv } from "./helpers.ts";

Deno.test("the relay task runs main.ts with exactly RELAY_PERMISSIONS, never -A", () => {
  const words = denoJson.tasks.relay.split(/\s+/);
  assert.deepEqual(words.filter((w) => w.startsWith("-")), [...RELAY_PERMISSIONS]);
  assert.ok(!words.includes("-A") && !words.includes("--allow-all"));
  assert.equal(words.at(-1), "main.ts");
});

Deno.test("compileArgs() builds every target with the relay permissions into dist/", () => {
  assert.deepEqual(Object.keys(TARGETS), [
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-pc-windows-msvc",
  ]);
  assert.deepEqual(compileArgs("x86_64-pc-windows-msvc"), [
    "compile",
    ...RELAY_PERMISSIONS,
    "--target",
    "x86_64-pc-windows-msvc",
    "--output",
    "dist/relay-windows-x64.exe",
    "--include",
    "lib/storage/sqlite/checkpoint_worker.ts",
    "main.ts",
  ]);
  assert.throws(() => compileArgs("riscv64-linux"), /Unknown target/);
});

Deno.test("every worker module of the product is named for deno compile to embed", async () => {
  // deno compile embeds what main.ts imports; a worker is loaded by URL instead.
  const root = fromFileUrl(new URL("..", import.meta.url));
  const found: string[] = [];
  async function scan(folder: string): Promise<void> {
    for await (const entry of Deno.readDir(`${root}${folder}`)) {
      if (entry.isDirectory) await scan(`${folder}/${entry.name}`);
      if (!entry.name.endsWith(".ts")) continue;
      const file = `${root}${folder}/${entry.name}`;
      const source = await Deno.readTextFile(file);
      for (
        const match of source.matchAll(/new Worker\(\s*new URL\("([^"]+)", import\.meta\.url\)/g)
      ) {
        found.push(fromFileUrl(new URL(match[1], `file://${file}`)).slice(root.length));
      }
    }
  }
  for (const folder of ["cli", "lib", "server"]) await scan(folder);
  assert.deepEqual(found.sort(), [...WORKER_MODULES].sort());
  assert.deepEqual(found, ["lib/storage/sqlite/checkpoint_worker.ts"]);
});

Deno.test("the compile task dry-runs all five targets, between writing and restoring the lock module", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-run", "--allow-env", "scripts/compile.ts", "--dry-run"],
    cwd: new URL("..", import.meta.url),
    // No BUILD_NODE_LOCKED_* from the environment: an unlocked build.
    env: childEnv(),
    clearEnv: true,
    stdout: "piped",
  }).output();
  assert.equal(output.code, 0);
  const lines = new TextDecoder().decode(output.stdout).trim().split("\n");
  assert.deepEqual(lines, [
    "write cli/node_lock_build.ts: unlocked",
    ...Object.keys(TARGETS).map((t) => `deno ${compileArgs(t).join(" ")}`),
    "restore cli/node_lock_build.ts",
  ]);
});

Deno.test("parseCompileArgs() builds every target unless --target names one", () => {
  const errors: string[] = [];
  const output = { print: () => {}, printError: (text: string) => errors.push(text) };
  assert.deepEqual(parseCompileArgs([], output), {
    kind: "run",
    options: { targets: Object.keys(TARGETS), dryRun: false },
  });
  assert.deepEqual(parseCompileArgs(["--target", "aarch64-apple-darwin", "--dry-run"], output), {
    kind: "run",
    options: { targets: ["aarch64-apple-darwin"], dryRun: true },
  });
  assert.deepEqual(errors, []);
  assert.deepEqual(parseCompileArgs(["--target", "riscv64-linux"], output), {
    kind: "exit",
    code: 2,
  });
  assert.match(
    errors.join("\n"),
    /Unknown target "riscv64-linux"; one of x86_64-unknown-linux-gnu/,
  );
});

Deno.test("the systemd unit runs relay serve as a dedicated user with a state directory and restarts", async () => {
  const unit = await Deno.readTextFile(new URL("../scripts/relay.service", import.meta.url));
  const settings = new Map(
    unit.split("\n").filter((line) => /^\w+=/.test(line)).map((line) => {
      const index = line.indexOf("=");
      return [line.slice(0, index), line.slice(index + 1)] as const;
    }),
  );
  assert.equal(settings.get("ExecStart"), "/usr/local/bin/relay serve");
  assert.equal(settings.get("User"), "relay");
  assert.equal(settings.get("StateDirectory"), "relay");
  assert.equal(settings.get("Environment"), "RELAY_DATABASE=/var/lib/relay/relay.sqlite");
  assert.equal(settings.get("Restart"), "on-failure");
  assert.equal(settings.get("KillSignal"), "SIGTERM");
  assert.equal(settings.get("WantedBy"), "multi-user.target");
});
