/**
 * What the lease operations of `lib/leases.ts` take and answer: the server's
 * lease rules, and the result of each claim, lookup and release.
 *
 * @module
 */

import type { Strategy } from "./strategy.ts";

/** The server's lease rules. */
export interface LeasePolicy {
  /** Lease time to live after each heartbeat, in seconds. */
  ttl: number;
  /** Whether leases are extended by repeated claims and expire without them. */
  heartbeats: boolean;
  /** How a free license is chosen. */
  strategy: Strategy;
}

/** Inputs of one lease operation. */
export interface LeaseOptions {
  /** Pool name; null for licenses added without a pool. */
  pool: string | null;
  /** Current unix time in seconds. */
  now: number;
  policy: LeasePolicy;
  /** Uniform random number in [0, 1), for the `rand` strategy. */
  random?: () => number;
}

/** Which license a lease is on, as the holder may learn it (never the key). */
export interface LeaseLicense {
  /** The license's id at Keygen. */
  guid: string;
  /** Unix seconds when its file expires; null: never, or not recorded. */
  fileExpiresAt: number | null;
}

/** What a claim did. */
export type ClaimResult =
  | {
    kind: "created";
    licenseFile: Uint8Array;
    licenseKey: string;
    expiresAt: number;
    license: LeaseLicense;
  }
  | {
    kind: "extended";
    expiresAt: number;
    license: LeaseLicense;
    /**
     * The file and key, for a user only: a user's seat follows the user to
     * any machine, so an extension may be the first claim from this one.
     */
    grant?: { licenseFile: Uint8Array; licenseKey: string };
  }
  | { kind: "conflict" }
  | {
    kind: "exhausted" | "expired_only";
    /** When the pool's first live lease runs out (unix seconds); undefined: none will. */
    retryAt: number | undefined;
  };

/** A holder's current lease, as {@link lookup} finds it. */
export type LookupResult =
  | {
    kind: "found";
    licenseFile: Uint8Array;
    licenseKey: string;
    /** Unix seconds; null: the lease never runs out (no heartbeats). */
    expiresAt: number | null;
    license: LeaseLicense;
  }
  | { kind: "not_found" };

/** What a release did. */
export type ReleaseResult = { kind: "released"; licenseId: string } | { kind: "not_found" };
