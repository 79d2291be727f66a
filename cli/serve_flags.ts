/**
 * The flags of `relay serve`: the part of the one flag table (`./flags.ts`)
 * that is about the server, in the order `--help` lists them.
 *
 * @module
 */

import {
  AUDIT_RETENTION_BOUNDS,
  CULL_INTERVAL_BOUNDS,
  DEFAULT_PORT,
  type DurationBounds,
  MAX_WAIT_BOUNDS,
  TTL_BOUNDS,
} from "../lib/config.ts";
import type { FlagSpec } from "./flag_spec.ts";

/** `from 30s to 365d`. */
function range(bounds: DurationBounds): string {
  return `from ${bounds.min} to ${bounds.max}`;
}

/** `FLAGS.serve`. */
export const SERVE_FLAGS = {
  port: {
    flags: "-p, --port <port>",
    env: ["RELAY_PORT", "PORT"],
    default: String(DEFAULT_PORT),
    description: "port to listen on",
  },
  bind: {
    flags: "-b, --bind <addr>",
    env: ["RELAY_ADDR", "BIND_ADDR"],
    default: "0.0.0.0",
    description: "address to bind",
  },
  ttl: {
    flags: "-t, --ttl <duration>",
    env: ["RELAY_LEASE_TTL"],
    default: "60s",
    description: `lease time to live after each heartbeat, ${range(TTL_BOUNDS)}`,
  },
  cullInterval: {
    flags: "--cull-interval <duration>",
    env: ["RELAY_CULL_INTERVAL"],
    default: "15s",
    description: `how often expired leases are reaped, ${range(CULL_INTERVAL_BOUNDS)}`,
  },
  strategy: {
    flags: "--strategy <strategy>",
    env: ["RELAY_STRATEGY"],
    default: "fifo",
    description: "which free license a new node gets",
  },
  noHeartbeats: {
    flags: "--no-heartbeats",
    env: ["RELAY_NO_HEARTBEATS"],
    description: "leases last until released: no extension by heartbeat, no reaping",
  },
  pool: { flags: "--pool <name>", env: ["RELAY_POOL"], description: "serve only this pool" },
  signingSecret: {
    flags: "--signing-secret <secret>",
    env: ["RELAY_SIGNING_SECRET"],
    description: "sign responses with HMAC-SHA256",
  },
  signingSecretFile: {
    flags: "--signing-secret-file <path>",
    env: ["RELAY_SIGNING_SECRET_FILE"],
    description: "read the signing secret from a file, keeping it out of the process list",
  },
  maxWait: {
    flags: "--max-wait <duration>",
    env: ["RELAY_MAX_WAIT"],
    default: "5m",
    description: `the longest ?wait= a claim may ask for, ${
      range(MAX_WAIT_BOUNDS)
    } (longer ones answer 400)`,
  },
  maxWaiters: {
    flags: "--max-waiters <count>",
    env: ["RELAY_MAX_WAITERS"],
    default: "1024",
    description: "most claims waiting for a seat at once; beyond it 410 at once (0: no waiting)",
  },
  authTokenFile: {
    flags: "--auth-token-file <path>",
    env: ["RELAY_AUTH_TOKEN_FILE"],
    description:
      "require Authorization: Bearer <token> on /v1/nodes, with the tokens of this file (one per line; re-read on SIGHUP)",
  },
  tlsCert: {
    flags: "--tls-cert <path>",
    env: ["RELAY_TLS_CERT"],
    description: "serve HTTPS with this PEM certificate chain",
  },
  tlsKey: {
    flags: "--tls-key <path>",
    env: ["RELAY_TLS_KEY"],
    description: "the PEM private key of --tls-cert",
  },
  auditRetention: {
    flags: "--audit-retention <duration>",
    env: ["RELAY_AUDIT_RETENTION"],
    description: `delete audit records older than this, e.g. 30d, ${
      range(AUDIT_RETENTION_BOUNDS)
    } (default: keep all)`,
  },
  expiryWarning: {
    flags: "--expiry-warning <duration>",
    env: ["RELAY_EXPIRY_WARNING"],
    default: "7d",
    description: "warn at start and daily about license files that expire within this",
  },
  maxConnections: {
    flags: "--max-connections <count>",
    env: ["RELAY_MAX_CONNECTIONS"],
    default: "4096",
    description: "most connections open at once; at the cap the longest idle one is closed",
  },
  idleTimeout: {
    flags: "--idle-timeout <duration>",
    env: ["RELAY_IDLE_TIMEOUT"],
    default: "60s",
    description: "close a kept-alive connection after this long without a request",
  },
  headerTimeout: {
    flags: "--header-timeout <duration>",
    env: ["RELAY_HEADER_TIMEOUT"],
    default: "10s",
    description: "close a new connection that has not sent a whole request by then",
  },
  noMetrics: {
    flags: "--no-metrics",
    env: ["RELAY_NO_METRICS"],
    description: "do not serve Prometheus metrics at GET /metrics",
  },
  ui: {
    flags: "--ui",
    env: ["RELAY_UI"],
    description: "serve a read-only status page at GET /ui",
  },
} as const satisfies Record<string, FlagSpec>;
