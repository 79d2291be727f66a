/**
 * The flags of `relay serve` parsed once into a validated `ServeConfig`:
 * flags over env vars over defaults (`cli/flags.ts`), and the signing secret
 * and TLS files read.
 *
 * @module
 */

import {
  AUDIT_RETENTION_BOUNDS,
  type ConnectionLimits,
  CULL_INTERVAL_BOUNDS,
  type DurationBounds,
  MAX_WAIT_BOUNDS,
  parseDuration,
  parsePort,
  type ServeConfig,
  TTL_BOUNDS,
  withinBounds,
} from "../lib/config.ts";
import { UsageError } from "../lib/errors.ts";
import { STRATEGIES, type Strategy } from "../lib/leases.ts";
import { parseTokenFile } from "../server/auth.ts";
import type { NodeLock } from "../lib/node_lock.ts";
import { readSmallFile } from "./files.ts";
import { type Env, envSwitch, envValue, FLAGS, type FlagSpec, flagValue } from "./flags.ts";

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
  authTokenFile?: string;
  maxWait?: string;
  maxWaiters?: string;
  tlsCert?: string;
  tlsKey?: string;
  auditRetention?: string;
  expiryWarning?: string;
  maxConnections?: string;
  idleTimeout?: string;
  headerTimeout?: string;
  /** False with `--no-metrics` (commander sets it true otherwise). */
  metrics?: boolean;
  ui?: boolean;
}

/** What parsing needs of the run: the environment, and how the user's paths resolve. */
export interface ServeEnv {
  env: Env;
  /** Resolves a path the user gave (`CommandContext.path`). */
  path: (typed: string) => string;
  /**
   * A node-locked build's `addr`, `port` and `signingSecret`: each one set
   * wins over its flags (refused) and env vars (ignored, with a warning).
   */
  lock?: Pick<NodeLock, "addr" | "port" | "signingSecret">;
  /** Prints a warning (an env var a locked value overrides). */
  warn?: (message: string) => void;
}

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
  // "time-to-live value must be at least 30s" is the reference Relay's wording.
  const ttlMs = boundedDuration(flagValue(FLAG.ttl, options.ttl, env)!, TTL_BOUNDS, {
    name: "time-to-live value",
  });
  const cullIntervalMs = boundedDuration(
    flagValue(FLAG.cullInterval, options.cullInterval, env)!,
    CULL_INTERVAL_BOUNDS,
    { name: "Cull interval" },
  );
  const strategy = flagValue(FLAG.strategy, options.strategy, env)!;
  if (!STRATEGIES.includes(strategy as Strategy)) {
    throw new UsageError(`Invalid strategy "${strategy}": use fifo, lifo or rand`);
  }
  const pool = flagValue(FLAG.pool, options.pool, env) ?? null;
  const retention = flagValue(FLAG.auditRetention, options.auditRetention, env);
  const auditRetentionMs = retention === undefined
    ? null
    : boundedDuration(retention, AUDIT_RETENTION_BOUNDS, { name: "Audit retention" });
  return {
    port: parsePort(
      lockedValue(run, {
        specs: [FLAG.port],
        given: [options.port],
        locked: run.lock?.port,
        what: `serves on port ${run.lock?.port}`,
      }) ?? flagValue(FLAG.port, options.port, env)!,
    ),
    bind: lockedValue(run, {
      specs: [FLAG.bind],
      given: [options.bind],
      locked: run.lock?.addr,
      what: `binds ${run.lock?.addr}`,
    }) ?? flagValue(FLAG.bind, options.bind, env)!,
    // Whole seconds, so every `expires_at` and `expires_in` is an integer.
    ttlSeconds: Math.floor(ttlMs / 1000),
    cullIntervalMs,
    strategy: strategy as Strategy,
    heartbeats: options.heartbeats && !envSwitch(FLAG.noHeartbeats, env),
    pool: pool === "" ? null : pool,
    signingSecret: await signingSecret(options, run),
    tls: await tlsFiles(options, run),
    auditRetentionSeconds: auditRetentionMs === null ? null : Math.floor(auditRetentionMs / 1000),
    expiryWarningSeconds: Math.floor(
      parseDuration(flagValue(FLAG.expiryWarning, options.expiryWarning, env)!) / 1000,
    ),
    connections: connectionLimits(options, env),
    auth: await authTokens(options, run),
    waiting: {
      maxWaitSeconds: Math.floor(
        boundedDuration(flagValue(FLAG.maxWait, options.maxWait, env)!, MAX_WAIT_BOUNDS, {
          name: "Max wait",
        }) / 1000,
      ),
      maxWaiters: wholeNumber(flagValue(FLAG.maxWaiters, options.maxWaiters, env)!, {
        name: "waiter cap",
        max: MAX_CONNECTIONS,
      }),
    },
    metrics: options.metrics !== false && !envSwitch(FLAG.noMetrics, env),
    ui: options.ui === true || envSwitch(FLAG.ui, env),
  };
}

/**
 * A whole number from 0 to `max`.
 *
 * @throws {UsageError} anything else: `Invalid waiter cap "x": use a whole number from 0 to 1000000`.
 */
function wholeNumber(text: string, { name, max }: { name: string; max: number }): number {
  const value = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || value > max) {
    throw new UsageError(`Invalid ${name} "${text}": use a whole number from 0 to ${max}`);
  }
  return value;
}

/** `--auth-token-file`: the file and its tokens, or null. */
async function authTokens(
  options: ServeOptions,
  run: ServeEnv,
): Promise<{ file: string; tokens: string[] } | null> {
  const given = flagValue(FLAG.authTokenFile, options.authTokenFile, run.env);
  if (given === undefined) return null;
  const file = run.path(given);
  return { file, tokens: await readTokenFile(file) };
}

/**
 * The tokens of an auth token file (`server/auth.ts` `parseTokenFile`).
 *
 * @throws {UsageError} the file holds no token or a malformed line.
 * @throws {UnreadableFileError} it cannot be read.
 */
export async function readTokenFile(file: string): Promise<string[]> {
  const text = new TextDecoder().decode(await readSmallFile(file, "auth token file", 1024 * 1024));
  return parseTokenFile(text, file);
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
    if (ms < CULL_INTERVAL_BOUNDS.minMs || ms > CULL_INTERVAL_BOUNDS.maxMs) {
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

/**
 * `text` parsed as a duration in milliseconds, inside `bounds`.
 *
 * @throws {UsageError} not a duration; or outside `bounds`:
 *   `<name> must be at least 30s`, `<name> must be at most 365d, not "400d"`.
 */
function boundedDuration(text: string, bounds: DurationBounds, what: { name: string }): number {
  const ms = parseDuration(text);
  if (withinBounds(ms, bounds)) return ms;
  throw new UsageError(
    ms < bounds.minMs
      ? `${what.name} must be at least ${bounds.min}`
      : `${what.name} must be at most ${bounds.max}, not "${text}"`,
  );
}

/**
 * The signing secret from the flag, the file, or their env vars; at most one
 * of them. An empty secret would start a server that says it signs and signs
 * nothing, so an empty or blank one is refused wherever it comes from, an env
 * var set to "" included.
 */
async function signingSecret(options: ServeOptions, run: ServeEnv): Promise<string | null> {
  const locked = lockedValue(run, {
    specs: [FLAG.signingSecret, FLAG.signingSecretFile],
    given: [options.signingSecret, options.signingSecretFile],
    locked: run.lock?.signingSecret,
    what: "signs responses with its embedded signing secret",
  });
  if (locked !== undefined) return locked;
  const inline = rawSetting(FLAG.signingSecret, options.signingSecret, run.env);
  const file = rawSetting(FLAG.signingSecretFile, options.signingSecretFile, run.env);
  // Never quote the value: it is the secret.
  if (inline !== undefined && inline.value.trim() === "") {
    throw new UsageError(`Signing secret from ${inline.from} is empty`);
  }
  if (file !== undefined && file.value.trim() === "") {
    throw new UsageError(`Signing secret file path from ${file.from} is empty`);
  }
  if (inline !== undefined && file !== undefined) {
    throw new UsageError("Give the signing secret or a file holding it, not both");
  }
  if (file === undefined) return inline?.value ?? null;
  // A file usually ends with a newline that is not part of the secret.
  const secret = new TextDecoder().decode(
    await readSmallFile(run.path(file.value), "signing secret file", 64 * 1024),
  )
    .replace(/\r?\n$/, "");
  if (secret.trim() === "") {
    throw new UsageError(`Signing secret file "${file.value}" holds no secret`);
  }
  return secret;
}

/**
 * The locked value of a node-locked build, undefined when the build does
 * not lock it. A flag that would change it is refused (the reference has no
 * such flag in a locked build); an env var is ignored with a warning (the
 * reference ignores it silently). `what` ends "this node-locked build …".
 *
 * @throws {UsageError} one of the flags is given.
 */
function lockedValue(
  run: ServeEnv,
  options: {
    specs: FlagSpec[];
    given: (string | undefined)[];
    locked: string | undefined;
    what: string;
  },
): string | undefined {
  const { specs, given, locked, what } = options;
  if (locked === undefined || locked === "") return undefined;
  for (const [i, spec] of specs.entries()) {
    if (given[i] !== undefined) {
      const name = spec.flags.split(" ").find((token) => token.startsWith("--"));
      throw new UsageError(`${name} cannot be used: this node-locked build ${what}`);
    }
  }
  for (const name of specs.flatMap((spec) => spec.env)) {
    if (envValue(run.env, name) !== undefined) {
      run.warn?.(`${name} is ignored: this node-locked build ${what}`);
    }
  }
  return locked;
}

/**
 * The flag's value, else the first of its env vars that is set, even to "";
 * with where it came from (`--signing-secret`, `RELAY_SIGNING_SECRET`).
 */
function rawSetting(
  spec: FlagSpec,
  given: string | undefined,
  env: Env,
): { value: string; from: string } | undefined {
  if (given !== undefined) return { value: given, from: spec.flags.split(" ")[0] };
  const name = spec.env.find((name) => env[name] !== undefined);
  return name === undefined ? undefined : { value: env[name]!, from: name };
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
