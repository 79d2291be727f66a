/**
 * `relay serve`: the leasing server. Parses its flags once into a
 * `ServeConfig` (`cli/serve_config.ts`), opens the store, serves the API
 * on connections it accepts itself (`server/listener.ts`), runs the reaper,
 * and shuts down gracefully on SIGINT, SIGTERM or SIGHUP.
 *
 * @module
 */

import { Command } from "commander";
import type { ServeConfig } from "../lib/config.ts";
import { followWindow } from "../lib/audit_log.ts";
import { DatabaseError, ListenError } from "../lib/errors.ts";
import { writeProblem } from "../lib/health.ts";
import type { Logger } from "../lib/logger.ts";
import { STRATEGIES } from "../lib/leases.ts";
import { findPool } from "../lib/licenses.ts";
import { isLocked, UNLOCKED } from "../lib/node_lock.ts";
import { createHandler } from "../server/app.ts";
import { type Authenticator, createAuthenticator } from "../server/auth.ts";
import { startExpiryWarnings } from "../server/expiry_warnings.ts";
import { type ConnectionServer, serveConnections } from "../server/listener.ts";
import { RelayMetrics } from "../server/metrics.ts";
import { startReaper } from "../server/reaper.ts";
import { SeatWaiters } from "../server/waiters.ts";
import type { CommandContext } from "./context.ts";
import { flagOption, FLAGS, type FlagSpec } from "./flags.ts";
import { readTokenFile, serveConfig, type ServeOptions } from "./serve_config.ts";
import { watchStopSignals } from "./stop_signals.ts";
import { VERSION } from "./version.ts";

/** Builds the `serve` command. */
export function serveCommand(context: CommandContext): Command {
  const flags = FLAGS.serve;
  // What a node-locked build locks is hidden from its help, as the reference has no such flag.
  const lock = isLocked(context.nodeLock) ? context.nodeLock : UNLOCKED;
  const lockable = (spec: FlagSpec, locked: string) =>
    locked === "" ? flagOption(spec) : flagOption(spec).hideHelp();
  return new Command("serve")
    .description("run the relay server that leases licenses to nodes")
    .addOption(lockable(flags.port, lock.port))
    .addOption(lockable(flags.bind, lock.addr))
    .addOption(flagOption(flags.ttl))
    .addOption(flagOption(flags.cullInterval))
    .addOption(flagOption(flags.strategy).choices(STRATEGIES))
    .addOption(flagOption(flags.noHeartbeats))
    .addOption(flagOption(flags.pool))
    .addOption(lockable(flags.signingSecret, lock.signingSecret))
    .addOption(lockable(flags.signingSecretFile, lock.signingSecret))
    .addOption(flagOption(flags.authTokenFile))
    .addOption(flagOption(flags.maxWait))
    .addOption(flagOption(flags.maxWaiters))
    .addOption(flagOption(flags.tlsCert))
    .addOption(flagOption(flags.tlsKey))
    .addOption(flagOption(flags.auditRetention))
    .addOption(flagOption(flags.expiryWarning))
    .addOption(flagOption(flags.maxConnections))
    .addOption(flagOption(flags.idleTimeout))
    .addOption(flagOption(flags.headerTimeout))
    .addOption(flagOption(flags.noMetrics))
    .addOption(flagOption(flags.ui))
    .action(async (options: ServeOptions) => {
      const { io } = context;
      const logger = context.logger("stdout");
      const config = await serveConfig(options, {
        env: io.env,
        path: context.path,
        lock,
        // Shown at every verbosity: the operator's setting is overridden.
        warn: (message) => logger.warn(message, {}, { always: true }),
      });
      logSettings(logger, config, context);
      const now = () => context.now();
      const auth = config.auth && (await createAuthenticator(config.auth.tokens));
      // From here on a signal means a graceful stop, also while starting up;
      // SIGHUP re-reads the token file instead when there is one.
      using signals = watchStopSignals(
        io.shutdown,
        auth && config.auth ? () => reloadTokens(auth, config.auth!.file, logger) : undefined,
      );
      const store = await context.openStore({
        create: true,
        groupCommit: true,
        backgroundCheckpoints: { logger },
      });
      // Named without its password, if a URL holds one.
      const database = context.databaseName();
      try {
        // Refuse now rather than answer every claim with a 500.
        const problem = await writeProblem(store, now());
        if (problem !== null) {
          throw new DatabaseError(
            `Cannot serve "${database}": the database does not accept writes (${problem})`,
          );
        }
        if (config.pool !== null && !(await findPool(store, config.pool))) {
          logger.warn(
            "the pool to serve does not exist yet; claims answer 400 until licenses are added to it",
            { pool: config.pool },
            // A start-up mistake to fix: shown at every verbosity.
            { always: true },
          );
        }
        const expiryWarnings = startExpiryWarnings({
          store,
          within: config.expiryWarningSeconds,
          now,
          logger,
        });
        await expiryWarnings.check().catch((error) =>
          logger.error("license expiry check failed", { error: error.message })
        );
        const waiters = new SeatWaiters({ maxWaiters: config.waiting.maxWaiters, now });
        // Counted whether or not /metrics is served: the status page shows denials.
        const metrics = await RelayMetrics.create({
          store,
          version: VERSION,
          now,
          auditWindow: followWindow(context.config().database),
        });
        const counted = metrics.countExpiries(store);
        const handler = await createHandler({
          store: counted,
          metrics,
          logger,
          now,
          auth,
          waiters,
          config: {
            pool: config.pool,
            signingSecret: config.signingSecret,
            maxWaitSeconds: config.waiting.maxWaitSeconds,
            metrics: config.metrics,
            ui: config.ui,
            policy: {
              ttl: config.ttlSeconds,
              heartbeats: config.heartbeats,
              strategy: config.strategy,
            },
          },
        });
        const reaper = config.heartbeats || config.auditRetentionSeconds !== null
          ? startReaper({
            store: counted,
            onReap: (seconds) => metrics.reap(seconds),
            ttl: config.heartbeats ? config.ttlSeconds : null,
            auditRetention: config.auditRetentionSeconds,
            intervalMs: config.cullIntervalMs,
            now,
            logger,
            onReaped: () => waiters.notifyAll(),
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
                auth: auth ? `${auth.size} tokens` : undefined,
                audit: context.config().audit,
                audit_retention: config.auditRetentionSeconds === null
                  ? "forever"
                  : `${config.auditRetentionSeconds}s`,
              }),
          }, handler);
        } catch (error) {
          await reaper?.stop();
          await expiryWarnings.stop();
          throw listenError(error, config);
        }
        await signals.received;
        logger.notice("relay stopping: finishing requests in flight");
        // Claims waiting for a seat get their 410 now, not when their wait ends.
        waiters.close();
        await server.shutdown();
        await reaper?.stop();
        await expiryWarnings.stop();
      } finally {
        await store.close();
      }
      logger.notice("relay stopped");
    });
}

/**
 * Every setting of this run, at debug: what the flags, env vars and defaults
 * came to. Secrets and TLS only as whether they are set.
 */
function logSettings(logger: Logger, config: ServeConfig, context: CommandContext): void {
  const { audit, pragmas, verbosity } = context.config();
  logger.debug("serve settings", {
    database: context.databaseName(),
    audit,
    pragmas: Object.entries(pragmas).map(([key, value]) => `${key}=${value}`).join(",") ||
      undefined,
    verbosity,
    bind: config.bind,
    port: config.port,
    pool: config.pool ?? "all",
    strategy: config.strategy,
    ttl: `${config.ttlSeconds}s`,
    heartbeats: config.heartbeats,
    cull_interval_ms: config.cullIntervalMs,
    signing: config.signingSecret !== null,
    tls: config.tls !== null,
    audit_retention: config.auditRetentionSeconds === null
      ? "forever"
      : `${config.auditRetentionSeconds}s`,
    expiry_warning: `${config.expiryWarningSeconds}s`,
    max_connections: config.connections.maxConnections,
    idle_timeout_ms: config.connections.idleTimeoutMs,
    header_timeout_ms: config.connections.headerTimeoutMs,
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
 * SIGHUP with `--auth-token-file`: the file is read again; a file that cannot
 * be read or holds no valid token leaves the tokens as they were.
 */
async function reloadTokens(auth: Authenticator, file: string, logger: Logger): Promise<void> {
  try {
    const tokens = await readTokenFile(file);
    await auth.replace(tokens);
    logger.notice("auth tokens reloaded", { file, tokens: tokens.length });
  } catch (error) {
    logger.error("auth tokens not reloaded: keeping the previous ones", {
      file,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}
