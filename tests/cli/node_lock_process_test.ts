/**
 * Node-locked builds as real processes: `deno run main.ts` of a temporary
 * copy of the sources whose lock module is generated for this machine
 * (`lockedBuild`, which never touches the checkout), reading this host's
 * real machine id, hostname and interfaces.
 *
 * @module
 */

import assert from "node:assert/strict";
import { goPlatform, privateIPv4 } from "../../lib/host_identity.ts";
import { type NodeLock, UNLOCKED } from "../../lib/node_lock.ts";
import {
  generateKeyPair,
  type MachineMintOptions,
  mintLicenseFile,
  mintMachineFile,
} from "../../scripts/mint.ts";
import { type CliResult, runCli, tempDir } from "../helpers.ts";
import { lockedBuild, runBuild, thisMachineFingerprint } from "./node_lock_support.ts";

const FINGERPRINT = await thisMachineFingerprint();
const PLATFORM = goPlatform(Deno.build);
const HOSTNAME = Deno.hostname();
const LICENSE_KEY = "73F7DA-19BCBF-30B806-2F4C7D-3C2ACE-V3";
const keyPair = await generateKeyPair("ed25519");
const rsaPair = await generateKeyPair("rsa");
/** Locked to this machine: fingerprint, platform and hostname. */
const LOCK: NodeLock = {
  ...UNLOCKED,
  publicKey: keyPair.publicKeyText,
  fingerprint: FINGERPRINT,
  platform: PLATFORM,
  hostname: HOSTNAME,
};
const DAY_MS = 86_400_000;

/** A machine file for this machine (overridable), written to `path`. */
async function writeMachineFile(
  path: string,
  overrides: Partial<MachineMintOptions> = {},
  pair = keyPair,
): Promise<void> {
  const minted = await mintMachineFile(pair, {
    fingerprint: FINGERPRINT,
    platform: PLATFORM,
    hostname: HOSTNAME,
    licenseKey: LICENSE_KEY,
    ...overrides,
  });
  await Deno.writeTextFile(path, minted.certificate);
}

/** Asserts a refusal: exit 1, the one line, and no license key anywhere. */
function assertRefused(result: CliResult, line: string | RegExp): void {
  assert.equal(result.code, 1, result.stderr);
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, result.stderr);
  if (typeof line === "string") assert.equal(lines[0], line);
  else assert.match(lines[0], line);
  assert.ok(!(result.stdout + result.stderr).includes(LICENSE_KEY), "the key is never shown");
}

Deno.test("relay fingerprint prints the HMAC-SHA256 of keygen-relay keyed by this machine's id", async () => {
  await using dir = await tempDir();
  const result = await runCli(["fingerprint"], { cwd: dir.path });
  assert.deepEqual(result, { code: 0, stdout: `${FINGERPRINT}\n`, stderr: "" });
});

Deno.test("a build locked to this machine runs with its machine file and refuses every bad one", async (t) => {
  await using dir = await tempDir();
  const main = await lockedBuild(dir.path, LOCK);
  const env = { RELAY_NODE_LOCKED_LICENSE_KEY: LICENSE_KEY };
  const run = (args: string[], extra: Record<string, string> = {}) =>
    runBuild(main, args, { cwd: dir.path, env: { ...env, ...extra } });

  await t.step("version, help and fingerprint need no machine file", async () => {
    const version = await run(["version"]);
    assert.deepEqual(version, {
      code: 0,
      stdout: `0.1.0+node-locked.${FINGERPRINT.slice(0, 4)}..${FINGERPRINT.slice(-4)}\n`,
      stderr: "",
    });
    const help = await run(["--help"]);
    assert.equal(help.code, 0);
    assert.ok(
      help.stdout.includes(`relay/${version.stdout.trim()} ${goPlatform(Deno.build, "-")}`),
    );
    assert.ok(help.stdout.includes("--node-locked-machine-file-path"));
    assert.equal((await run(["fingerprint"])).stdout, `${FINGERPRINT}\n`);
  });

  await t.step("no machine file", async () => {
    assertRefused(
      await run(["ls"]),
      'error: failed to unlock relay: machine file could not be read: cannot read machine file "./relay.lic": no such file',
    );
  });

  await t.step("a good machine file unlocks add and ls", async () => {
    await writeMachineFile(`${dir.path}/relay.lic`);
    const license = await mintLicenseFile(keyPair);
    await Deno.writeTextFile(`${dir.path}/a.lic`, license.certificate);
    const added = await run(["-vvvv", "add", "--file", "a.lic", "--key", license.key]);
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.stdout, `license added successfully: ${license.id}\n`);
    assert.ok(!added.stderr.includes(LICENSE_KEY));
    const listed = await run(["ls", "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(JSON.parse(listed.stdout)[0].id, license.id);
    const refused = await run([
      "add",
      "--file",
      "a.lic",
      "--key",
      license.key,
      "--public-key",
      "x",
    ]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /^error: --public-key cannot be used: /);
  });

  const refusals: [string, () => Promise<void>, Record<string, string>, string | RegExp][] = [
    [
      "a wrong license key",
      () => writeMachineFile(`${dir.path}/relay.lic`),
      { RELAY_NODE_LOCKED_LICENSE_KEY: "0BAD00-000000-000000-000000-000000-V3" },
      /^error: failed to unlock relay: machine file could not be decrypted: /,
    ],
    [
      "a machine file signed by another account (RSA)",
      () => writeMachineFile(`${dir.path}/relay.lic`, {}, rsaPair),
      {},
      /^error: failed to unlock relay: machine file is not genuine: /,
    ],
    [
      "an expired machine file",
      () =>
        writeMachineFile(`${dir.path}/relay.lic`, {
          issued: new Date(Date.now() - 31 * DAY_MS),
          ttl: 30 * 86_400,
        }),
      {},
      /^error: failed to unlock relay: machine file is expired: /,
    ],
    [
      "a machine file issued in the future",
      () => writeMachineFile(`${dir.path}/relay.lic`, { issued: new Date(Date.now() + DAY_MS) }),
      {},
      /^error: failed to unlock relay: machine file is desynced with system clock: /,
    ],
    [
      "a machine file for another fingerprint",
      () =>
        writeMachineFile(`${dir.path}/relay.lic`, {
          fingerprint: "0".repeat(64),
          encryptedFor: FINGERPRINT,
        }),
      {},
      "error: failed to unlock relay: machine file fingerprint mismatch: the machine file's fingerprint is not the one Relay is locked to",
    ],
    [
      "a machine file for another platform",
      () => writeMachineFile(`${dir.path}/relay.lic`, { platform: "plan9/mips" }),
      {},
      "error: failed to unlock relay: machine file platform mismatch: the machine file's platform is not the one Relay is locked to",
    ],
    [
      "a machine file for another hostname",
      () => writeMachineFile(`${dir.path}/relay.lic`, { hostname: `not-${HOSTNAME}` }),
      {},
      "error: failed to unlock relay: machine file hostname mismatch: the machine file's hostname is not the one Relay is locked to",
    ],
  ];
  for (const [name, prepare, extra, line] of refusals) {
    await t.step(name, async () => {
      await prepare();
      assertRefused(await run(["ls"], extra), line);
    });
  }
});

Deno.test("a build locked to another host's fingerprint, platform, hostname or IP refuses to run here", async (t) => {
  const privateIp = privateIPv4(Deno.networkInterfaces());
  const cases: [string, Partial<NodeLock>, string][] = [
    [
      "fingerprint",
      { fingerprint: "f".repeat(64) },
      "error: failed to unlock relay: machine file fingerprint mismatch: this machine's fingerprint is not the one Relay is locked to",
    ],
    [
      "platform",
      { platform: "plan9/mips" },
      "error: failed to unlock relay: machine file platform mismatch: this machine's platform is not the one Relay is locked to",
    ],
    [
      "hostname",
      { hostname: `not-${HOSTNAME}` },
      "error: failed to unlock relay: machine file hostname mismatch: this machine's hostname is not the one Relay is locked to",
    ],
    [
      "ip",
      { ip: "10.254.254.254" },
      // This host may have no private address at all (a cloud VM on public
      // addresses): then the reference's "could not determine" message.
      privateIp === null
        ? "error: failed to unlock relay: machine could not determine ip: no private ip found"
        : "error: failed to unlock relay: machine file ip mismatch: this machine's ip is not the one Relay is locked to",
    ],
  ];
  for (const [name, lock, line] of cases) {
    await t.step(name, async () => {
      await using dir = await tempDir();
      const main = await lockedBuild(dir.path, { ...LOCK, ...lock });
      // A machine file for this machine, locked attributes included.
      await writeMachineFile(`${dir.path}/relay.lic`, { ...lock, encryptedFor: FINGERPRINT });
      await Deno.writeTextFile(`${dir.path}/key`, LICENSE_KEY);
      const result = await runBuild(main, ["--node-locked-license-key-file", "key", "ls"], {
        cwd: dir.path,
      });
      assertRefused(result, line);
    });
  }
});
