/**
 * The flags of `relay serve` parsed once into a validated `ServeConfig`:
 * flags over env vars over defaults (`cli/flags.ts`), and the signing secret
 * and TLS files read.
 *
 * @module
 */

import {
  type ConnectionLimits,
  MIN_TTL_SECONDS,
  parseDuration,
  parsePort,
  type ServeConfig,
} from "../lib/config.ts";
import { UsageError } from "../lib/errors.ts";
import { STRATEGIES, type Strategy } from "../lib/leases.ts";
import { readSmallFile } from "./files.ts";
import { type Env, envSwitch, FLAGS, type FlagSpec, flagValue } from "./flags.ts";

/** The options of `relay serve` as commander parses them. */
export interface ServeOptions {
  port?: string;
  bind?: string;
  ttl?: string;
  cullInterval?: string;
  strategy?: string;
  heartbeats: boolean;
  pool?: string;
  signingSecret?: string;
  signingSecretFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  auditRetention?: string;
  maxConnections?: string;
  idleTimeout?: string;
  headerTimeout?: string;
}

/** What parsing needs of the run: the environment, and how the user's paths resolve. */
export interface ServeEnv {
  env: Env;
  /** Resolves a path the user gave (`CommandContext.path`). */
  path: (typed: string) => string;
}

/** Longest cull interval: timers beyond 2^31 ms overflow. */
const MAX_CULL_INTERVAL_MS = 24 * 3_600_000;

const FLAG = FLAGS.serve;

/**
 * Flags over env vars over defaults, validated; reads the secret and TLS files.
 *
 * @throws {UsageError} a value is malformed or out of range, or flags conflict.
 * @throws {UnreadableFileError} the secret or a TLS file cannot be read.
 */
export async function serveConfig(options: ServeOptions, run: ServeEnv): Promise<ServeConfig> {
  const { env } = run;
  // Flags with a default are never undefined.
  const ttlMs = parseDuration(flagValue(FLAG.ttl, options.ttl, env)!);
  if (ttlMs < MIN_TTL_SECONDS * 1000) {
    // The reference Relay's wording.
    throw new UsageError(`time-to-live value must be at least ${MIN_TTL_SECONDS}s`);
  }
  const cullIntervalMs = parseDuration(flagValue(FLAG.cullInterval, options.cullInterval, env)!);
  if (cullIntervalMs < 100 || cullIntervalMs > MAX_CULL_INTERVAL_MS) {
    throw new UsageError("Cull interval must be from 100ms to 24h");
  }
  const strategy = flagValue(FLAG.strategy, options.strategy, env)!;
  if (!STRATEGIES.includes(strategy as Strategy)) {
    throw new UsageError(`Invalid strategy "${strategy}": use fifo, lifo or rand`);
  }
  const pool = flagValue(FLAG.pool, options.pool, env) ?? null;
  const retention = flagValue(FLAG.auditRetention, options.auditRetention, env);
  const auditRetentionMs = retention === undefined ? null : parseDuration(retention);
  if (auditRetentionMs !== null && auditRetentionMs < 60_000) {
    throw new UsageError("Audit retention must be at least 1m");
  }
  return {
    port: parsePort(flagValue(FLAG.port, options.port, env)!),
    bind: flagValue(FLAG.bind, options.bind, env)!,
    ttlSeconds: Math.floor(ttlMs / 1000),
    cullIntervalMs,
    strategy: strategy as Strategy,
    heartbeats: options.heartbeats && !envSwitch(FLAG.noHeartbeats, env),
    pool: pool === "" ? null : pool,
    signingSecret: await signingSecret(options, run),
    tls: await tlsFiles(options, run),
    auditRetentionSeconds: auditRetentionMs === null ? null : Math.floor(auditRetentionMs / 1000),
    connections: connectionLimits(options, env),
  };
}

/** The most `--max-connections` accepts: far beyond any descriptor limit in use. */
const MAX_CONNECTIONS = 1_000_000;

/** `--max-connections`, `--idle-timeout` and `--header-timeout`. */
function connectionLimits(options: ServeOptions, env: Env): ConnectionLimits {
  const maxText = flagValue(FLAG.maxConnections, options.maxConnections, env)!;
  const max = Number(maxText.trim());
  if (!/^\d+$/.test(maxText.trim()) || max < 1 || max > MAX_CONNECTIONS) {
    throw new UsageError(
      `Invalid connection cap "${maxText}": use a whole number from 1 to ${MAX_CONNECTIONS}`,
    );
  }
  // Timers beyond 2^31 ms overflow, as for the cull interval.
  const timeout = (spec: FlagSpec, given: string | undefined, name: string) => {
    const ms = parseDuration(flagValue(spec, given, env)!);
    if (ms < 100 || ms > MAX_CULL_INTERVAL_MS) {
      throw new UsageError(`${name} must be from 100ms to 24h`);
    }
    return ms;
  };
  return {
    maxConnections: max,
    idleTimeoutMs: timeout(FLAG.idleTimeout, options.idleTimeout, "Idle timeout"),
    headerTimeoutMs: timeout(FLAG.headerTimeout, options.headerTimeout, "Header timeout"),
  };
}

/** The signing secret from the flag, the file, or their env vars; at most one of them. */
async function signingSecret(options: ServeOptions, run: ServeEnv): Promise<string | null> {
  const inline = flagValue(FLAG.signingSecret, options.signingSecret, run.env);
  const file = flagValue(FLAG.signingSecretFile, options.signingSecretFile, run.env);
  if (inline !== undefined && file !== undefined) {
    throw new UsageError("Give the signing secret or a file holding it, not both");
  }
  if (file === undefined) return inline ?? null;
  // A file usually ends with a newline that is not part of the secret.
  const secret = new TextDecoder().decode(
    await readSmallFile(run.path(file), "signing secret file", 64 * 1024),
  )
    .replace(/\r?\n$/, "");
  if (secret === "") throw new UsageError(`Signing secret file "${file}" holds no secret`);
  return secret;
}

/** The TLS certificate and key, both or neither. */
async function tlsFiles(
  options: ServeOptions,
  run: ServeEnv,
): Promise<{ cert: string; key: string } | null> {
  const certPath = flagValue(FLAG.tlsCert, options.tlsCert, run.env);
  const keyPath = flagValue(FLAG.tlsKey, options.tlsKey, run.env);
  if (certPath === undefined && keyPath === undefined) return null;
  if (certPath === undefined || keyPath === undefined) {
    throw new UsageError("HTTPS needs both --tls-cert and --tls-key");
  }
  const decoder = new TextDecoder();
  return {
    cert: decoder.decode(await readSmallFile(run.path(certPath), "TLS certificate", 1024 * 1024)),
    key: decoder.decode(await readSmallFile(run.path(keyPath), "TLS key", 1024 * 1024)),
  };
}
