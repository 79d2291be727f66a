import assert from "node:assert/strict";
import { NodeLockError } from "../../lib/errors.ts";
import {
  type HostReader,
  isLocked,
  lockDesignation,
  lockedAttributes,
  type NodeLock,
  unlock,
  UNLOCKED,
  type UnlockOptions,
} from "../../lib/node_lock.ts";
import { unixSeconds } from "../../lib/time.ts";
import { generateKeyPair, type KeyPair, mintMachineFile } from "../../scripts/mint.ts";
import type { MachineMintOptions } from "../../scripts/mint.ts";

const FINGERPRINT = "364646b45d9b732f1baaeee9382f4e7e541e65e8a9fd4aa72e4853477d85bf08";
const ISSUED = new Date("2026-03-01T00:00:00.000Z");
const NOW = unixSeconds(new Date("2026-03-02T00:00:00.000Z"));
const LICENSE_KEY = "73F7DA-19BCBF-30B806-2F4C7D-3C2ACE-V3";
const ed25519 = await generateKeyPair("ed25519");
const rsa = await generateKeyPair("rsa");

/** This host as the tests see it: every attribute the lock names. */
const HOST = {
  fingerprint: FINGERPRINT,
  platform: "linux/amd64",
  hostname: "relay",
  ip: "192.168.1.1",
};

/** A lock to every host attribute, with `keyPair`'s public key. */
function lockFor(keyPair: KeyPair, overrides: Partial<NodeLock> = {}): NodeLock {
  return { ...UNLOCKED, publicKey: keyPair.publicKeyText, ...HOST, ...overrides };
}

function host(overrides: Partial<typeof HOST> = {}): HostReader {
  const facts = { ...HOST, ...overrides };
  return {
    fingerprint: () => Promise.resolve(facts.fingerprint),
    platform: () => facts.platform,
    hostname: () => Promise.resolve(facts.hostname),
    privateIp: () =>
      facts.ip === ""
        ? Promise.reject(new Error("no private ip found"))
        : Promise.resolve(facts.ip),
  };
}

/** A machine file for this host (every attribute), with `overrides`. */
async function machineFile(
  keyPair: KeyPair,
  overrides: Partial<MachineMintOptions> = {},
): Promise<Uint8Array> {
  const minted = await mintMachineFile(keyPair, {
    ...HOST,
    licenseKey: LICENSE_KEY,
    issued: ISSUED,
    ...overrides,
  });
  return new TextEncoder().encode(minted.certificate);
}

function options(file: Uint8Array, overrides: Partial<UnlockOptions> = {}): UnlockOptions {
  return {
    readMachineFile: () => Promise.resolve(file),
    licenseKey: LICENSE_KEY,
    host: host(),
    now: NOW,
    ...overrides,
  };
}

/** Asserts that unlocking fails with a NodeLockError whose message is `message`. */
async function refused(lock: NodeLock, opts: UnlockOptions, message: string | RegExp) {
  const error = await unlock(lock, opts).then(() => undefined, (error) => error);
  assert.ok(error instanceof NodeLockError, String(error));
  if (typeof message === "string") assert.equal(error.message, message);
  else assert.match(error.message, message);
  assert.ok(!error.message.includes(LICENSE_KEY), "the message never shows the key");
}

Deno.test("isLocked() needs both a public key and a fingerprint; lockDesignation() as the reference", () => {
  assert.equal(isLocked(UNLOCKED), false);
  assert.equal(isLocked({ ...UNLOCKED, publicKey: "k" }), false);
  assert.equal(isLocked({ ...UNLOCKED, fingerprint: FINGERPRINT }), false);
  assert.equal(isLocked({ ...UNLOCKED, publicKey: "k", fingerprint: FINGERPRINT }), true);
  assert.equal(lockDesignation(UNLOCKED), "");
  assert.equal(
    lockDesignation({ ...UNLOCKED, publicKey: "k", fingerprint: FINGERPRINT }),
    "+node-locked.3646..bf08",
  );
  assert.equal(
    lockDesignation({ ...UNLOCKED, publicKey: "k", fingerprint: "0123456789abcde" }),
    "+node-locked",
    "a fingerprint shorter than 16 is not shown",
  );
  assert.deepEqual(
    lockedAttributes(lockFor(ed25519, { hostname: "" })),
    [
      "fingerprint",
      "platform",
      "hostname",
      "ip",
    ].filter((name) => name !== "hostname"),
  );
});

Deno.test("unlock() passes a machine file for this host, Ed25519 and RSA", async () => {
  for (const keyPair of [ed25519, rsa]) {
    const file = await unlock(lockFor(keyPair), options(await machineFile(keyPair)));
    assert.equal(file.fingerprint, FINGERPRINT);
    assert.equal(file.hostname, "relay");
  }
  // Locked to the fingerprint only: the other attributes are neither read nor compared.
  const throwing: HostReader = {
    ...host(),
    platform: () => {
      throw new Error("not read");
    },
    hostname: () => Promise.reject(new Error("not read")),
    privateIp: () => Promise.reject(new Error("not read")),
  };
  const bare = await machineFile(ed25519, { platform: null, hostname: null, ip: null });
  const fingerprintOnly = {
    ...UNLOCKED,
    publicKey: ed25519.publicKeyText,
    fingerprint: FINGERPRINT,
  };
  await unlock(fingerprintOnly, options(bare, { host: throwing }));
});

Deno.test("unlock() refuses every mismatch, naming the attribute as the reference does", async (t) => {
  const lock = lockFor(ed25519);
  const good = await machineFile(ed25519);
  const cases: [string, Uint8Array, HostReader, string][] = [
    [
      "this host's fingerprint",
      good,
      host({ fingerprint: "f".repeat(64) }),
      "machine file fingerprint mismatch: this machine's fingerprint is not the one Relay is locked to",
    ],
    [
      "the file's fingerprint",
      await machineFile(ed25519, { fingerprint: "e".repeat(64), encryptedFor: FINGERPRINT }),
      host(),
      "machine file fingerprint mismatch: the machine file's fingerprint is not the one Relay is locked to",
    ],
    [
      "this host's platform",
      good,
      host({ platform: "darwin/arm64" }),
      "machine file platform mismatch: this machine's platform is not the one Relay is locked to",
    ],
    [
      "the file's platform",
      await machineFile(ed25519, { platform: "windows/amd64" }),
      host(),
      "machine file platform mismatch: the machine file's platform is not the one Relay is locked to",
    ],
    [
      "this host's hostname",
      good,
      host({ hostname: "other" }),
      "machine file hostname mismatch: this machine's hostname is not the one Relay is locked to",
    ],
    [
      "the file's hostname",
      await machineFile(ed25519, { hostname: null }),
      host(),
      "machine file hostname mismatch: the machine file's hostname is not the one Relay is locked to",
    ],
    [
      "this host's ip",
      good,
      host({ ip: "10.0.0.2" }),
      "machine file ip mismatch: this machine's ip is not the one Relay is locked to",
    ],
    [
      "the file's ip",
      await machineFile(ed25519, { ip: "10.0.0.2" }),
      host(),
      "machine file ip mismatch: the machine file's ip is not the one Relay is locked to",
    ],
    [
      "no private ip on this host",
      good,
      host({ ip: "" }),
      "machine could not determine ip: no private ip found",
    ],
  ];
  for (const [name, file, reader, message] of cases) {
    await t.step(name, () => refused(lock, options(file, { host: reader }), message));
  }
});

Deno.test("unlock() refuses a missing, forged, expired or future machine file and a wrong key", async (t) => {
  const lock = lockFor(ed25519);
  const good = await machineFile(ed25519);
  await t.step(
    "no license key",
    () => refused(lock, options(good, { licenseKey: "" }), "license key is required"),
  );
  await t.step("unreadable", () =>
    refused(
      lock,
      options(good, { readMachineFile: () => Promise.reject(new Error("No such file")) }),
      "machine file could not be read: no such file",
    ));
  await t.step(
    "signed by another account",
    async () =>
      refused(
        lock,
        options(await machineFile(await generateKeyPair("ed25519"))),
        /^machine file is not genuine: /,
      ),
  );
  await t.step("not a machine file", () =>
    refused(
      lock,
      options(new TextEncoder().encode("hello")),
      /^machine file could not be verified: machine file is malformed/,
    ));
  await t.step(
    "wrong license key",
    () =>
      refused(
        lock,
        options(good, { licenseKey: "WRONG" }),
        /^machine file could not be decrypted: /,
      ),
  );
  await t.step(
    "expired",
    () => refused(lock, options(good, { now: NOW + 31 * 86_400 }), /^machine file is expired: /),
  );
  await t.step("issued in the future", () =>
    refused(
      lock,
      options(good, { now: unixSeconds(ISSUED) - 3600 }),
      /^machine file is desynced with system clock: /,
    ));
  await t.step("the fingerprint cannot be read", () =>
    refused(
      lock,
      options(good, {
        host: { ...host(), fingerprint: () => Promise.reject(new Error("No machine id")) },
      }),
      "machine could not determine fingerprint: no machine id",
    ));
});
