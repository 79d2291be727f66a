/**
 * `relay serve`: the leasing server. Parses its flags once into a
 * `ServeConfig` (`cli/serve_config.ts`), opens the store, serves the API
 * on connections it accepts itself (`server/listener.ts`), runs the reaper,
 * and shuts down gracefully on SIGINT/SIGTERM.
 *
 * @module
 */

import { Command } from "commander";
import type { ServeConfig } from "../lib/config.ts";
import { ListenError } from "../lib/errors.ts";
import { STRATEGIES } from "../lib/leases.ts";
import { findPool } from "../lib/licenses.ts";
import { createHandler } from "../server/app.ts";
import { type ConnectionServer, serveConnections } from "../server/listener.ts";
import { startReaper } from "../server/reaper.ts";
import type { CommandContext } from "./context.ts";
import { flagOption, FLAGS } from "./flags.ts";
import { serveConfig, type ServeOptions } from "./serve_config.ts";

/** Builds the `serve` command. */
export function serveCommand(context: CommandContext): Command {
  const flags = FLAGS.serve;
  return new Command("serve")
    .description("run the relay server that leases licenses to nodes")
    .addOption(flagOption(flags.port))
    .addOption(flagOption(flags.bind))
    .addOption(flagOption(flags.ttl))
    .addOption(flagOption(flags.cullInterval))
    .addOption(flagOption(flags.strategy).choices(STRATEGIES))
    .addOption(flagOption(flags.noHeartbeats))
    .addOption(flagOption(flags.pool))
    .addOption(flagOption(flags.signingSecret))
    .addOption(flagOption(flags.signingSecretFile))
    .addOption(flagOption(flags.tlsCert))
    .addOption(flagOption(flags.tlsKey))
    .addOption(flagOption(flags.auditRetention))
    .addOption(flagOption(flags.maxConnections))
    .addOption(flagOption(flags.idleTimeout))
    .addOption(flagOption(flags.headerTimeout))
    .action(async (options: ServeOptions) => {
      const { io } = context;
      const config = await serveConfig(options, { env: io.env, path: context.path });
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
        let server: ConnectionServer;
        try {
          server = serveConnections({
            hostname: config.bind,
            port: config.port,
            tls: config.tls,
            ...config.connections,
            logger,
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
