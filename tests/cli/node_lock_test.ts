/**
 * A node-locked build in-process (`run(args, io, { nodeLock })`, another
 * host through `Io.host`): the gate before each command, the locked values
 * of `add` and `serve`, the version and help markings, and an unlocked
 * build left as it was.
 *
 * @module
 */

import assert from "node:assert/strict";
import { UNLOCKED } from "../../lib/node_lock.ts";
import { generateKeyPair, mintLicenseFile, mintMachineFile } from "../../scripts/mint.ts";
import { tempDir } from "../helpers.ts";
import { fakeHost, runLocked } from "./node_lock_support.ts";
import { runRelay } from "./support.ts";

const FINGERPRINT = "364646b45d9b732f1baaeee9382f4e7e541e65e8a9fd4aa72e4853477d85bf08";
const HOST = fakeHost({ fingerprint: FINGERPRINT, hostname: "relay", ip: "192.168.1.1" });
const LICENSE_KEY = "73F7DA-19BCBF-30B806-2F4C7D-3C2ACE-V3";
const keyPair = await generateKeyPair("ed25519");
const LOCK = {
  ...UNLOCKED,
  publicKey: keyPair.publicKeyText,
  fingerprint: FINGERPRINT,
  platform: "linux/amd64",
  hostname: "relay",
  ip: "192.168.1.1",
};
const SERVER_LOCK = { ...LOCK, addr: "127.0.0.1", port: "0", signingSecret: "hunter2" };

/** A folder with a machine file for HOST at ./relay.lic; the key in env. */
async function unlockedFolder() {
  const dir = await tempDir();
  const machine = await mintMachineFile(keyPair, {
    fingerprint: FINGERPRINT,
    platform: "linux/amd64",
    hostname: "relay",
    ip: "192.168.1.1",
    licenseKey: LICENSE_KEY,
  });
  await Deno.writeTextFile(`${dir.path}/relay.lic`, machine.certificate);
  return Object.assign(dir, { env: { RELAY_NODE_LOCKED_LICENSE_KEY: LICENSE_KEY } });
}

/** A license file signed by the locked key pair, written into `dir`. */
async function licenseFile(dir: string) {
  const minted = await mintLicenseFile(keyPair);
  await Deno.writeTextFile(`${dir}/a.lic`, minted.certificate);
  return minted;
}

Deno.test("a locked build adds licenses with its embedded public key and refuses --public-key", async () => {
  await using dir = await unlockedFolder();
  const run = (args: string[], env: Record<string, string> = {}) =>
    runLocked(args, { cwd: dir.path, lock: LOCK, host: HOST, env: { ...dir.env, ...env } });
  const license = await licenseFile(dir.path);

  const refused = await run(["add", "--file", "a.lic", "--key", license.key, "--public-key", "x"]);
  assert.equal(refused.code, 2);
  assert.equal(
    refused.stderr,
    "error: --public-key cannot be used: this node-locked build verifies license files with its embedded public key\n",
  );

  const other = await generateKeyPair("ed25519");
  const added = await run(["add", "--file", "a.lic", "--key", license.key], {
    RELAY_PUBLIC_KEY: other.publicKeyText,
  });
  assert.equal(added.code, 0, added.stderr);
  assert.equal(added.stdout, `license added successfully: ${license.id}\n`);
  const warning = JSON.parse(added.stderr.trim());
  assert.equal(warning.level, "warn");
  assert.equal(
    warning.msg,
    "RELAY_PUBLIC_KEY is ignored: this node-locked build verifies license files with its embedded public key",
  );

  const help = await run(["add", "--help"]);
  assert.ok(!help.stdout.includes("--public-key"), "a locked build's help hides --public-key");
});

Deno.test("a locked build serves on its locked address and port and signs with its locked secret", async () => {
  await using dir = await unlockedFolder();
  const run = (args: string[], env: Record<string, string> = {}) =>
    runLocked(args, {
      cwd: dir.path,
      lock: SERVER_LOCK,
      host: HOST,
      env: { ...dir.env, ...env },
    });
  for (
    const [args, flag, what] of [
      [["--port", "7000"], "--port", "serves on port 0"],
      [["-p", "7000"], "--port", "serves on port 0"],
      [["--bind", "0.0.0.0"], "--bind", "binds 127.0.0.1"],
      [["--signing-secret", "x"], "--signing-secret", "signs responses with its embedded"],
      [
        ["--signing-secret-file", "s"],
        "--signing-secret-file",
        "signs responses with its embedded",
      ],
    ] as [string[], string, string][]
  ) {
    const result = await run(["serve", ...args]);
    assert.equal(result.code, 2, args.join(" "));
    assert.match(
      result.stderr,
      new RegExp(`^error: ${flag} cannot be used: this node-locked build ${what}`),
    );
  }

  const help = await run(["serve", "--help"]);
  for (const flag of ["--port", "--bind", "--signing-secret"]) {
    assert.ok(!help.stdout.includes(flag), `${flag} hidden in a locked build's help`);
  }

  // The env vars are ignored, with a warning each; the locked values win.
  const shutdown = new AbortController();
  let listening: (line: Record<string, unknown>) => void;
  const started = new Promise<Record<string, unknown>>((resolve) => (listening = resolve));
  const served = runLocked(["serve"], {
    cwd: dir.path,
    lock: SERVER_LOCK,
    host: HOST,
    env: {
      ...dir.env,
      RELAY_PORT: "1",
      RELAY_ADDR: "0.0.0.0",
      RELAY_SIGNING_SECRET: "other",
    },
    shutdown: shutdown.signal,
    onStdout: (text) => {
      for (const line of text.split("\n")) {
        if (line.includes('"relay listening"')) listening(JSON.parse(line));
      }
    },
  });
  const startup = await Promise.race([started, served.then((r) => Promise.reject(r))]);
  try {
    assert.equal(startup.address, `http://127.0.0.1:${startup.port}`);
    const response = await fetch(`http://127.0.0.1:${startup.port}/v1/health`);
    await response.body?.cancel();
    assert.equal(response.status, 200);
    const [t, v1] = response.headers.get("Relay-Signature")!.split(",").map((p) => p.split("=")[1]);
    const key = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode("hunter2"),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["verify"],
    );
    assert.ok(
      await crypto.subtle.verify(
        "HMAC",
        key,
        Uint8Array.fromHex(v1),
        new TextEncoder().encode(`${t}.`),
      ),
      "signed with the locked secret",
    );
  } finally {
    shutdown.abort();
  }
  const result = await served;
  assert.equal(result.code, 0, result.stderr);
  const warnings = result.stdout.split("\n").filter((line) => line.includes('"warn"'))
    .map((line) => JSON.parse(line).msg);
  assert.deepEqual(warnings, [
    "RELAY_PORT is ignored: this node-locked build serves on port 0",
    "RELAY_ADDR is ignored: this node-locked build binds 127.0.0.1",
    "RELAY_SIGNING_SECRET is ignored: this node-locked build signs responses with its embedded signing secret",
  ]);
  assert.ok(!(result.stdout + result.stderr).includes("hunter2"), "the secret is not logged");
  assert.ok(!(result.stdout + result.stderr).includes(LICENSE_KEY), "the key is not logged");
});

Deno.test("a locked build shows +node-locked and the partial fingerprint in version and help", async () => {
  await using dir = await tempDir();
  // No machine file: version, help and fingerprint need none.
  const run = (args: string[]) => runLocked(args, { cwd: dir.path, lock: LOCK, host: HOST });
  assert.deepEqual(await run(["version"]), {
    code: 0,
    stdout: "0.1.0+node-locked.3646..bf08\n",
    stderr: "",
  });
  assert.equal((await run(["--version"])).stdout, "0.1.0+node-locked.3646..bf08\n");
  assert.equal((await run(["fingerprint"])).stdout, `${FINGERPRINT}\n`);
  const noMachineId = await runLocked(["fingerprint"], {
    cwd: dir.path,
    lock: UNLOCKED,
    host: {
      ...HOST,
      fingerprint: () => Promise.reject(new Error("no machine id in /etc/machine-id")),
    },
  });
  assert.deepEqual(noMachineId, {
    code: 1,
    stdout: "",
    stderr: "error: machine could not determine fingerprint: no machine id in /etc/machine-id\n",
  });
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(
    help.stdout,
    /\nVersion:\n {2}relay\/0\.1\.0\+node-locked\.3646\.\.bf08 [a-z]+-[a-z0-9]+ deno\d/,
  );
  for (
    const suffix of [
      "--node-locked-machine-file-path <path>",
      "[$RELAY_NODE_LOCKED_MACHINE_FILE_PATH=./relay.lic]",
      "--node-locked-license-key <key>",
      "[$RELAY_NODE_LOCKED_LICENSE_KEY]",
      "--node-locked-license-key-file <path>",
    ]
  ) {
    assert.ok(help.stdout.replace(/\s+/g, " ").includes(suffix), suffix);
  }
  // Every other command is gated.
  const ls = await run(["ls"]);
  assert.equal(ls.code, 1);
  assert.equal(ls.stderr, "error: failed to unlock relay: license key is required\n");
});

Deno.test("an unlocked build is unchanged: no node-locked flags, no marking, no gate", async () => {
  await using dir = await tempDir();
  const version = await runRelay(["version"], { cwd: dir.path });
  assert.equal(version.stdout, "0.1.0\n");
  const help = await runRelay(["--help"], { cwd: dir.path });
  assert.ok(!help.stdout.includes("node-locked"));
  assert.ok(!help.stdout.includes("Version:"));
  const flag = await runRelay(["--node-locked-license-key", "K", "version"], { cwd: dir.path });
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /unknown option '--node-locked-license-key'/);
  const serveHelp = await runRelay(["serve", "--help"], { cwd: dir.path });
  assert.ok(serveHelp.stdout.includes("--port"));
  assert.ok((await runRelay(["add", "--help"], { cwd: dir.path })).stdout.includes("--public-key"));
});

Deno.test("the license key unlocks from its flag, its env var or a key file, never shown", async (t) => {
  await using dir = await unlockedFolder();
  await Deno.writeTextFile(`${dir.path}/relay.key`, `${LICENSE_KEY}\n`);
  const run = (args: string[], env: Record<string, string> = {}) =>
    runLocked(["-vvv", ...args], { cwd: dir.path, lock: LOCK, host: HOST, env });
  const license = await licenseFile(dir.path);
  await t.step("flag", async () => {
    const result = await run([
      "--node-locked-license-key",
      LICENSE_KEY,
      "add",
      "--file",
      "a.lic",
      "--key",
      license.key,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      /"msg":"relay unlocked","locked_to":"fingerprint,platform,hostname,ip"/,
    );
    assert.ok(!(result.stdout + result.stderr).includes(LICENSE_KEY));
  });
  await t.step("key file flag and env var", async () => {
    for (
      const [args, env] of [
        [["--node-locked-license-key-file", "relay.key"], {}],
        [[], { RELAY_NODE_LOCKED_LICENSE_KEY_FILE: "relay.key" }],
        [[], { RELAY_NODE_LOCKED_LICENSE_KEY: LICENSE_KEY }],
      ] as const
    ) {
      const result = await run([...args, "ls"], env);
      assert.equal(result.code, 0, result.stderr);
      assert.ok(result.stdout.includes(license.id));
      assert.ok(!(result.stdout + result.stderr).includes(LICENSE_KEY));
    }
  });
  await t.step("a wrong key, and both a key and a key file", async () => {
    const wrong = await run(["--node-locked-license-key", "WRONG-KEY", "ls"]);
    assert.equal(wrong.code, 1);
    assert.match(
      wrong.stderr,
      /^error: failed to unlock relay: machine file could not be decrypted: /m,
    );
    assert.ok(!wrong.stderr.includes("WRONG-KEY"));
    const both = await run(["--node-locked-license-key-file", "relay.key", "ls"], {
      RELAY_NODE_LOCKED_LICENSE_KEY: LICENSE_KEY,
    });
    assert.equal(both.code, 2);
    assert.ok(!both.stderr.includes(LICENSE_KEY));
  });
  await t.step("another machine file path, and a missing one", async () => {
    await Deno.rename(`${dir.path}/relay.lic`, `${dir.path}/m.lic`);
    const moved = await run(["--node-locked-machine-file-path", "m.lic", "ls"], dir.env);
    assert.equal(moved.code, 0, moved.stderr);
    const env = await run(["ls"], { ...dir.env, RELAY_NODE_LOCKED_MACHINE_FILE_PATH: "m.lic" });
    assert.equal(env.code, 0, env.stderr);
    const missing = await run(["ls"], dir.env);
    assert.equal(missing.code, 1);
    assert.equal(
      missing.stderr,
      'error: failed to unlock relay: machine file could not be read: cannot read machine file "./relay.lic": no such file\n',
    );
  });
});
