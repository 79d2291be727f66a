/**
 * An example application that leases its seat from Relay with the client SDK
 * (`lib/client/`): it claims a license on start, works while the license is
 * valid, rides out a relay restart without losing its seat, pauses when the
 * lease is lost and resumes when it gets one again, and releases the seat on
 * Ctrl-C (SIGINT) or SIGTERM.
 *
 * deno run --allow-net --allow-read scripts/example_app.ts --url http://127.0.0.1:6349 \
 *   --fingerprint node-1 [--pool prod] [--token-file token] [--signing-secret S] \
 *   [--public-key HEX_OR_PEM_FILE] [--wait 30]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Lease, RelayClient, RelayClientError } from "../lib/client/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    url: { type: "string", default: "http://127.0.0.1:6349" },
    fingerprint: { type: "string" },
    pool: { type: "string" },
    "token-file": { type: "string" },
    "signing-secret": { type: "string" },
    "public-key": { type: "string" },
    wait: { type: "string", default: "0" },
  },
});
if (!values.fingerprint) {
  console.error("error: give --fingerprint, a stable id of this machine");
  Deno.exit(2);
}

/** A public key given inline (Ed25519 hex) or as a file (PEM). */
async function publicKey(value: string | undefined): Promise<string | undefined> {
  if (value === undefined || /^[0-9a-f]{64}$/i.test(value)) return value;
  return await Deno.readTextFile(value);
}

const relay = new RelayClient({
  url: values.url,
  fingerprint: values.fingerprint,
  pool: values.pool,
  token: values["token-file"] && (await Deno.readTextFile(values["token-file"])).trim(),
  signingSecret: values["signing-secret"],
  publicKey: await publicKey(values["public-key"]),
  wait: Number(values.wait),
  handleSignals: true, // Ctrl-C releases the seat, then exits 130.
});

const describe = (lease: Lease) =>
  `${lease.licenseId} until ${
    lease.validUntil === null ? "released" : new Date(lease.validUntil).toISOString()
  }`;
relay.on("lease", ({ reason, lease }) => console.log(`license ${reason}: ${describe(lease)}`));
relay.on("heartbeat", ({ lease }) => console.log(`heartbeat: ${describe(lease)}`));
relay.on(
  "retry",
  ({ error, delayMs }) =>
    console.log(`relay: ${error.code} (${error.message}); retrying in ${Math.round(delayMs)} ms`),
);
relay.on("lost", ({ reason }) => console.log(`lease lost (${reason}): pausing work`));
relay.on("released", () => console.log("seat released"));

// Claim on start; a relay that is down or full is tried again.
for (;;) {
  try {
    await relay.claim();
    break;
  } catch (error) {
    if (!(error instanceof RelayClientError)) throw error;
    const seconds = error.retryAfter ?? 5;
    console.log(`claim failed: ${error.code} (${error.message}); retrying in ${seconds} s`);
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  }
}

// The application's work: only while the license is valid.
setInterval(() => {
  console.log(
    relay.valid ? `working with license ${relay.lease?.licenseId}` : "waiting for a license",
  );
}, 5_000);
