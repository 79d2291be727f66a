/**
 * The Relay client SDK, for applications that lease a seat from Relay. No
 * dependencies beyond WebCrypto and `fetch`: it runs on Deno and on Node.js
 * 20 or later (as the bundle `deno task client:build` writes).
 *
 * ```ts
 * import { RelayClient } from "./lib/client/mod.ts";
 *
 * const relay = new RelayClient({ url: "http://relay:6349", fingerprint: "node-1", handleSignals: true });
 * relay.on("lease", ({ lease }) => useLicense(lease.licenseFile, lease.licenseKey));
 * relay.on("lost", () => stopLicensedWork());
 * await relay.claim();
 * ```
 *
 * @module
 */

export { type ClientState, type Lease, RelayClient, type RelayClientEvents } from "./client.ts";
export type { RelayClientOptions } from "./options.ts";
export { type ClientClock, SYSTEM_CLOCK } from "./clock.ts";
export { RelayClientError, type RelayClientErrorCode } from "./errors.ts";
export {
  importPublicKey,
  type LicenseFileCheck,
  type LicenseInfo,
  type VendorKey,
  verifyLicenseFile,
} from "./license_file.ts";
export { importSigningSecret, signatureProblem, type SignedRequest } from "./signature.ts";
