// The client SDK run by Node.js (as bundled by `deno task client:build`),
// driven by tests/client/node_test.ts. Usage:
//   node node_client.mjs <bundle.js> <config.json>
// Prints one JSON line per step. Plain JavaScript: Node.js 20 runs no TypeScript.

import { readFile } from "node:fs/promises";

const [bundle, configPath] = process.argv.slice(2);
const { RelayClient, RelayClientError, importPublicKey, verifyLicenseFile } = await import(bundle);
const config = JSON.parse(await readFile(configPath, "utf8"));
const print = (line) => console.log(JSON.stringify(line));

/** Timers that run when this script fires them, on the real clock. */
class ManualTimers {
  #next = 1;
  #timers = new Map();
  now() {
    return Date.now();
  }
  setTimeout(callback, ms) {
    const id = this.#next++;
    this.#timers.set(id, { at: Date.now() + ms, callback });
    return id;
  }
  clearTimeout(id) {
    this.#timers.delete(id);
  }
  get pending() {
    return this.#timers.size;
  }
  fire() {
    const [id, timer] = [...this.#timers.entries()].sort(([, a], [, b]) => a.at - b.at)[0];
    this.#timers.delete(id);
    timer.callback();
  }
}

if (config.mode === "files") {
  // Offline verification of every algorithm.
  for (const file of config.files) {
    const publicKey = await importPublicKey(config.publicKeys[file.kind]);
    const info = await verifyLicenseFile(file.certificate, {
      publicKey,
      licenseKey: file.key,
      now: Math.floor(Date.now() / 1000),
    });
    print({ algorithm: info.algorithm, id: info.id, entitlements: info.entitlements });
  }
  const wrong = await verifyLicenseFile(config.files[0].certificate, {
    publicKey: await importPublicKey(config.publicKeys[config.files[0].kind]),
    licenseKey: "WRONG-KEY",
    now: Math.floor(Date.now() / 1000),
  }).catch((error) => error);
  print({ wrongKey: wrong instanceof RelayClientError ? wrong.code : String(wrong) });
} else if (config.mode === "lifecycle") {
  const timers = new ManualTimers();
  const client = new RelayClient({
    url: config.url,
    fingerprint: config.fingerprint,
    token: config.token,
    signingSecret: config.secret,
    publicKey: config.publicKeys.ed25519,
    clock: timers,
  });
  const events = [];
  for (const type of ["lease", "heartbeat", "retry", "lost", "released"]) {
    client.on(type, () => events.push(type));
  }
  const lease = await client.claim();
  print({
    claimed: lease.licenseId,
    file: lease.licenseFile,
    entitlements: lease.license.entitlements,
  });
  const heartbeat = new Promise((resolve) => client.once("heartbeat", resolve));
  timers.fire();
  print({ heartbeat: (await heartbeat).lease.licenseId, valid: client.valid });
  await client.release();
  print({ events, state: client.state, pending: timers.pending });
  const forged = new RelayClient({
    url: config.url,
    fingerprint: "forged",
    token: config.token,
    signingSecret: "not-the-secret",
    clock: new ManualTimers(),
  });
  const refused = await forged.claim().catch((error) => error);
  print({ wrongSecret: refused.code });
} else if (config.mode === "signal") {
  // Real timers: the process lives on its heartbeat timer until SIGTERM.
  const client = new RelayClient({
    url: config.url,
    fingerprint: config.fingerprint,
    token: config.token,
    signingSecret: config.secret,
    handleSignals: true,
  });
  client.on("released", () => print({ released: true }));
  const lease = await client.claim();
  print({ claimed: lease.licenseId });
}
