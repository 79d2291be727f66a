/**
 * What identifies this host to a node-locked Relay, computed as the
 * reference Relay (Go) computes it, from facts the caller reads:
 *
 * - the fingerprint: keygen-sh/machineid's `ProtectedID("keygen-relay")`,
 *   the lowercase hex HMAC-SHA256 of the app id keyed by the machine id;
 * - the platform in Go's spelling, `GOOS/GOARCH` (`linux/amd64`);
 * - the private IPv4 address: the first private (RFC 1918) IPv4 address of
 *   an interface that is not the loopback one.
 *
 * Pure: reading the machine id, the hostname and the interfaces is the
 * caller's (`cli/host.ts`).
 *
 * @module
 */

/** The app id the reference Relay fingerprints its host with. */
export const RELAY_APP_ID = "keygen-relay";

const utf8 = new TextEncoder();

/** machineid's `ProtectedID(appId)` for `machineId`: hex HMAC-SHA256(key: machine id, data: app id). */
export async function protectedId(machineId: string, appId = RELAY_APP_ID): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    utf8.encode(machineId),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8.encode(appId))).toHex();
}

/**
 * The machine id from the contents of its candidate files, in order
 * (`/var/lib/dbus/machine-id`, then `/etc/machine-id`; undefined for one
 * that cannot be read), as machineid picks it: the first that is not empty,
 * trimmed. Null when none is.
 */
export function machineIdOf(candidates: readonly (string | undefined)[]): string | null {
  const found = candidates.find((text) => text !== undefined && text !== "");
  return found === undefined ? null : found.trim();
}

/** Go's `GOARCH` for Deno's `Deno.build.arch`. */
const GO_ARCH: Readonly<Record<string, string>> = {
  x86_64: "amd64",
  aarch64: "arm64",
};

/** The platform as Go writes it, `GOOS/GOARCH` (`linux/amd64`, `darwin/arm64`), from `Deno.build`. */
export function goPlatform(build: { os: string; arch: string }, separator = "/"): string {
  return `${build.os}${separator}${GO_ARCH[build.arch] ?? build.arch}`;
}

/** One address of a network interface, as `Deno.networkInterfaces()` lists it. */
export interface InterfaceAddress {
  name: string;
  family: string;
  address: string;
}

/**
 * The first private IPv4 address (10/8, 172.16/12, 192.168/16, Go's
 * `IsPrivate`) of an interface other than the loopback one, in the order
 * listed; null when there is none. The loopback interface is the one that
 * holds `127.0.0.0/8` or `::1` (Deno lists addresses without interface
 * flags); interfaces that are down are not listed at all.
 */
export function privateIPv4(addresses: readonly InterfaceAddress[]): string | null {
  const loopback = new Set(
    addresses.filter((entry) => entry.address === "::1" || octets(entry.address)?.[0] === 127)
      .map((entry) => entry.name),
  );
  for (const entry of addresses) {
    if (entry.family !== "IPv4" || loopback.has(entry.name)) continue;
    const ip = octets(entry.address);
    if (ip && isPrivate(ip)) return entry.address;
  }
  return null;
}

function octets(address: string): number[] | null {
  const parts = address.split(".");
  if (parts.length !== 4 || !parts.every((part) => /^\d{1,3}$/.test(part))) return null;
  const numbers = parts.map(Number);
  return numbers.every((n) => n <= 255) ? numbers : null;
}

function isPrivate([a, b]: number[]): boolean {
  return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
}
