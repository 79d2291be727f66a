/**
 * The options of a `RelayClient` (`lib/client/client.ts`): where the relay
 * is, which seat, what to trust, how to retry, and what to inject in tests.
 *
 * @module
 */

import type { ClientClock } from "./clock.ts";

/** Options of `RelayClient`; `url` and one of `fingerprint` or `user` are required. */
export interface RelayClientOptions {
  /** The relay's base URL, e.g. `http://relay:6349`. */
  url: string;
  /** The node's fingerprint: the seat is `/v1/nodes/{fingerprint}`. */
  fingerprint?: string;
  /** A user's email instead of a node: the seat is `/v1/users/{email}`. */
  user?: string;
  /** Sent as `Relay-Pool`: the pool to lease from. */
  pool?: string;
  /** Sent as `Authorization: Bearer <token>` (the relay's `--auth-token-file`). */
  token?: string;
  /** The relay's `--signing-secret`: every answer must carry a valid `Relay-Signature`. */
  signingSecret?: string;
  /** How far a signature's `t` may be from this machine's clock, in seconds; default 300. */
  signatureToleranceSeconds?: number;
  /**
   * Accept answers signed with `v1` alone (Keygen Relay); default false, so
   * an answer whose `v2` was stripped is refused.
   */
  allowV1Signatures?: boolean;
  /**
   * The vendor's Keygen public key (Ed25519 hex or RSA PEM): each license
   * file is verified and decrypted before the application gets it, and
   * {@link Lease.license} holds its dataset.
   */
  publicKey?: string;
  /** Seconds a claim may wait for a free seat (`?wait=`); heartbeats never wait. Default 0. */
  wait?: number;
  /** First retry delay after a failure, ms (doubled per failure, with jitter); default 1000. */
  retryInitialMs?: number;
  /** Longest retry delay, ms; default 30000. */
  retryMaxMs?: number;
  /** How long a request may take, ms (plus `wait` for claims); default 10000. */
  requestTimeoutMs?: number;
  /** Release the seat on SIGINT and SIGTERM; default false. */
  handleSignals?: boolean;
  /** With `handleSignals`: exit (130 / 143) once released; default true. */
  exitOnSignal?: boolean;
  /** Time and timers; default the system's. */
  clock?: ClientClock;
  /** Uniform randomness in [0, 1) for jitter; default `Math.random`. */
  random?: () => number;
  /** The `fetch` to use; default the global one. */
  fetch?: typeof fetch;
}
