/**
 * The permissions `relay` runs with, in one place: the `relay` task in
 * `deno.json`, `scripts/compile.ts` and the tests that spawn the CLI use
 * these, and a test checks that they agree.
 *
 * @module
 */

/** Deno permission flags of the `relay` program (never `-A`). */
export const RELAY_PERMISSIONS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  // A node-locked build compares this host's name and private IPv4 address.
  "--allow-sys=hostname,networkInterfaces",
];
