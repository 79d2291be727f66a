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
import { createHandler } from "../server/app.ts";
import { startReaper } from "../server/reaper.ts";
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
    .action(async (options: ServeOptions) => {
      const { io } = context;
      const config = serveConfig(options, io.env);
      const logger = context.logger("stdout");
      const nowMs = () => io.now().getTime();
      const store = context.openStore();
      try {
        if (config.pool !== null && !store.poolByName(config.pool)) {
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
          now: nowMs,
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
        const reaper = config.heartbeats
          ? startReaper({
            store,
            ttl: config.ttlSeconds,
            intervalMs: config.cullIntervalMs,
            now: nowMs,
            logger,
          })
          : null;
        let server: Deno.HttpServer;
        try {
          server = Deno.serve({
            hostname: config.bind,
            port: config.port,
            onListen: ({ hostname, port }) =>
              logger.notice("relay listening", {
                address: `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`,
                port,
                database: context.config().database,
                pool: config.pool ?? "all",
                strategy: config.strategy,
                ttl: `${config.ttlSeconds}s`,
                heartbeats: config.heartbeats,
                signing: config.signingSecret !== null,
                audit: context.config().audit,
              }),
          }, handler);
        } catch (error) {
          await reaper?.stop();
          throw listenError(error, config);
        }
        await untilSignal();
        logger.notice("relay stopping: finishing requests in flight");
        await server.shutdown();
        await reaper?.stop();
      } finally {
        store.close();
      }
      logger.notice("relay stopped");
    });
}

/** Longest cull interval: timers beyond 2^31 ms overflow. */
const MAX_CULL_INTERVAL_MS = 24 * 3_600_000;

/** Flags over env vars over defaults, validated. */
function serveConfig(
  options: ServeOptions,
  env: Readonly<Record<string, string | undefined>>,
): ServeConfig {
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
  return {
    port: parsePort(options.port ?? envValue(env, "RELAY_PORT", "PORT") ?? String(DEFAULT_PORT)),
    bind: options.bind ?? envValue(env, "RELAY_ADDR", "BIND_ADDR") ?? "0.0.0.0",
    ttlSeconds: Math.floor(ttlMs / 1000),
    cullIntervalMs,
    strategy: strategy as Strategy,
    heartbeats: options.heartbeats && !parseEnvFlag(env.RELAY_NO_HEARTBEATS),
    pool: pool === "" ? null : pool,
    signingSecret: options.signingSecret ?? envValue(env, "RELAY_SIGNING_SECRET") ?? null,
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
  return new ListenError(
    `Cannot listen on ${where}: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );
}

/** Resolves on the first SIGINT or SIGTERM (SIGINT only where SIGTERM does not exist). */
function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
    const onSignal = () => {
      for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
      resolve();
    };
    for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  });
}
