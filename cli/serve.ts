/**
 * `relay serve`: the leasing server. Parses its flags once into a
 * `ServeConfig`, opens the store, serves the API with `Deno.serve`, runs the
 * reaper, and shuts down gracefully on SIGINT/SIGTERM.
 *
 * @module
 */

import { Command, Option } from "commander";
import {
  DEFAULT_PORT,
  MIN_TTL_SECONDS,
  parseDuration,
  parseEnvFlag,
  parsePort,
  type ServeConfig,
} from "../lib/config.ts";
import { ListenError, UsageError } from "../lib/errors.ts";
import { STRATEGIES, type Strategy } from "../lib/leases.ts";
import { findPool } from "../lib/licenses.ts";
import { createHandler } from "../server/app.ts";
import { startReaper } from "../server/reaper.ts";
import { readSmallFile } from "./files.ts";
import { type CommandContext, envValue } from "./program.ts";

interface ServeOptions {
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
}

/** Builds the `serve` command. */
export function serveCommand(context: CommandContext): Command {
  return new Command("serve")
    .description("run the relay server that leases licenses to nodes")
    .option("-p, --port <port>", `port to listen on [$RELAY_PORT=${DEFAULT_PORT}]`)
    .option("-b, --bind <addr>", "address to bind [$RELAY_ADDR=0.0.0.0]")
    .option(
      "-t, --ttl <duration>",
      `lease time to live after each heartbeat, at least ${MIN_TTL_SECONDS}s [$RELAY_LEASE_TTL=60s]`,
    )
    .option(
      "--cull-interval <duration>",
      "how often expired leases are reaped [$RELAY_CULL_INTERVAL=15s]",
    )
    .addOption(
      new Option(
        "--strategy <strategy>",
        "which free license a new node gets [$RELAY_STRATEGY=fifo]",
      )
        .choices(STRATEGIES),
    )
    .option(
      "--no-heartbeats",
      "leases last until released: no extension by heartbeat, no reaping [$RELAY_NO_HEARTBEATS=1]",
    )
    .option("--pool <name>", "serve only this pool [$RELAY_POOL]")
    .option("--signing-secret <secret>", "sign responses with HMAC-SHA256 [$RELAY_SIGNING_SECRET]")
    .option(
      "--signing-secret-file <path>",
      "read the signing secret from a file, keeping it out of the process list [$RELAY_SIGNING_SECRET_FILE]",
    )
    .option("--tls-cert <path>", "serve HTTPS with this PEM certificate chain [$RELAY_TLS_CERT]")
    .option("--tls-key <path>", "the PEM private key of --tls-cert [$RELAY_TLS_KEY]")
    .option(
      "--audit-retention <duration>",
      "delete audit records older than this, e.g. 30d (default: keep all) [$RELAY_AUDIT_RETENTION]",
    )
    .action(async (options: ServeOptions) => {
      const { io } = context;
      const config = await serveConfig(options, io.env);
      const logger = context.logger("stdout");
      const now = () => context.now();
      const store = await context.openStore({
        groupCommit: true,
        backgroundCheckpoints: { logger },
      });
      const database = context.config().database;
      try {
        if (config.pool !== null && !(await findPool(store, config.pool))) {
          logger.warn(
            "the pool to serve does not exist yet; claims answer 400 until licenses are added to it",
            {
              pool: config.pool,
            },
          );
        }
        const handler = await createHandler({
          store,
          logger,
          now,
          config: {
            pool: config.pool,
            signingSecret: config.signingSecret,
            policy: {
              ttl: config.ttlSeconds,
              heartbeats: config.heartbeats,
              strategy: config.strategy,
            },
          },
        });
        const reaper = config.heartbeats || config.auditRetentionSeconds !== null
          ? startReaper({
            store,
            ttl: config.heartbeats ? config.ttlSeconds : null,
            auditRetention: config.auditRetentionSeconds,
            intervalMs: config.cullIntervalMs,
            now,
            logger,
          })
          : null;
        let server: Deno.HttpServer;
        try {
          server = Deno.serve({
            hostname: config.bind,
            port: config.port,
            ...config.tls,
            onListen: ({ hostname, port }) =>
              logger.notice("relay listening", {
                address: `${config.tls ? "https" : "http"}://${
                  hostname.includes(":") ? `[${hostname}]` : hostname
                }:${port}`,
                port,
                database,
                pool: config.pool ?? "all",
                strategy: config.strategy,
                ttl: `${config.ttlSeconds}s`,
                heartbeats: config.heartbeats,
                signing: config.signingSecret !== null,
                audit: context.config().audit,
                audit_retention: config.auditRetentionSeconds === null
                  ? "forever"
                  : `${config.auditRetentionSeconds}s`,
              }),
          }, handler);
        } catch (error) {
          await reaper?.stop();
          throw listenError(error, config);
        }
        await untilSignal(io.shutdown);
        logger.notice("relay stopping: finishing requests in flight");
        await server.shutdown();
        await reaper?.stop();
      } finally {
        await store.close();
      }
      logger.notice("relay stopped");
    });
}

/** Longest cull interval: timers beyond 2^31 ms overflow. */
const MAX_CULL_INTERVAL_MS = 24 * 3_600_000;

/** Flags over env vars over defaults, validated; reads the secret and TLS files. */
async function serveConfig(
  options: ServeOptions,
  env: Readonly<Record<string, string | undefined>>,
): Promise<ServeConfig> {
  const ttlMs = parseDuration(options.ttl ?? envValue(env, "RELAY_LEASE_TTL") ?? "60s");
  if (ttlMs < MIN_TTL_SECONDS * 1000) {
    // The reference Relay's wording.
    throw new UsageError(`time-to-live value must be at least ${MIN_TTL_SECONDS}s`);
  }
  const cullIntervalMs = parseDuration(
    options.cullInterval ?? envValue(env, "RELAY_CULL_INTERVAL") ?? "15s",
  );
  if (cullIntervalMs < 100 || cullIntervalMs > MAX_CULL_INTERVAL_MS) {
    throw new UsageError("Cull interval must be from 100ms to 24h");
  }
  const strategy = options.strategy ?? envValue(env, "RELAY_STRATEGY") ?? "fifo";
  if (!STRATEGIES.includes(strategy as Strategy)) {
    throw new UsageError(`Invalid strategy "${strategy}": use fifo, lifo or rand`);
  }
  const pool = options.pool ?? envValue(env, "RELAY_POOL") ?? null;
  const retention = options.auditRetention ?? envValue(env, "RELAY_AUDIT_RETENTION");
  const auditRetentionMs = retention === undefined ? null : parseDuration(retention);
  if (auditRetentionMs !== null && auditRetentionMs < 60_000) {
    throw new UsageError("Audit retention must be at least 1m");
  }
  return {
    port: parsePort(options.port ?? envValue(env, "RELAY_PORT", "PORT") ?? String(DEFAULT_PORT)),
    bind: options.bind ?? envValue(env, "RELAY_ADDR", "BIND_ADDR") ?? "0.0.0.0",
    ttlSeconds: Math.floor(ttlMs / 1000),
    cullIntervalMs,
    strategy: strategy as Strategy,
    heartbeats: options.heartbeats && !parseEnvFlag(env.RELAY_NO_HEARTBEATS),
    pool: pool === "" ? null : pool,
    signingSecret: await signingSecret(options, env),
    tls: await tlsFiles(options, env),
    auditRetentionSeconds: auditRetentionMs === null ? null : Math.floor(auditRetentionMs / 1000),
  };
}

/** The signing secret from the flag, the file, or their env vars; at most one of them. */
async function signingSecret(
  options: ServeOptions,
  env: Readonly<Record<string, string | undefined>>,
): Promise<string | null> {
  const inline = options.signingSecret ?? envValue(env, "RELAY_SIGNING_SECRET");
  const file = options.signingSecretFile ?? envValue(env, "RELAY_SIGNING_SECRET_FILE");
  if (inline !== undefined && file !== undefined) {
    throw new UsageError("Give the signing secret or a file holding it, not both");
  }
  if (file === undefined) return inline ?? null;
  // A file usually ends with a newline that is not part of the secret.
  const secret = new TextDecoder().decode(
    await readSmallFile(file, "signing secret file", 64 * 1024),
  )
    .replace(/\r?\n$/, "");
  if (secret === "") throw new UsageError(`Signing secret file "${file}" holds no secret`);
  return secret;
}

/** The TLS certificate and key, both or neither. */
async function tlsFiles(
  options: ServeOptions,
  env: Readonly<Record<string, string | undefined>>,
): Promise<{ cert: string; key: string } | null> {
  const certPath = options.tlsCert ?? envValue(env, "RELAY_TLS_CERT");
  const keyPath = options.tlsKey ?? envValue(env, "RELAY_TLS_KEY");
  if (certPath === undefined && keyPath === undefined) return null;
  if (certPath === undefined || keyPath === undefined) {
    throw new UsageError("HTTPS needs both --tls-cert and --tls-key");
  }
  const decoder = new TextDecoder();
  return {
    cert: decoder.decode(await readSmallFile(certPath, "TLS certificate", 1024 * 1024)),
    key: decoder.decode(await readSmallFile(keyPath, "TLS key", 1024 * 1024)),
  };
}

function listenError(error: unknown, config: ServeConfig): Error {
  const where = `${config.bind}:${config.port}`;
  if (error instanceof Deno.errors.AddrInUse) {
    return new ListenError(`Cannot listen on ${where}: the address is already in use`, {
      cause: error,
    });
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return new ListenError(`Cannot listen on ${where}: no such address on this machine`, {
      cause: error,
    });
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new ListenError(`Cannot listen on ${where}: permission denied`, { cause: error });
  }
  const reason = error instanceof Error ? error.message : String(error);
  if (config.tls && /cert|key|pem|tls/i.test(reason)) {
    return new ListenError(
      `Cannot serve HTTPS: the TLS certificate or key is not usable (${reason})`,
      {
        cause: error,
      },
    );
  }
  return new ListenError(
    `Cannot listen on ${where}: ${reason}`,
    { cause: error },
  );
}

/**
 * Resolves on the first SIGINT or SIGTERM (SIGINT only where SIGTERM does not
 * exist), or when `shutdown` is aborted.
 */
function untilSignal(shutdown?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
    const onSignal = () => {
      for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
      shutdown?.removeEventListener("abort", onSignal);
      resolve();
    };
    for (const signal of signals) Deno.addSignalListener(signal, onSignal);
    if (shutdown?.aborted) onSignal();
    else shutdown?.addEventListener("abort", onSignal);
  });
}
