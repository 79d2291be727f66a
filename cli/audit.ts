/**
 * `relay audit`: the audit log as an operator reads it (time, event,
 * license, node, pool; no raw ids), filtered by event, license, node, pool
 * and time, as a table, JSON or CSV; `--follow` keeps printing new events
 * as they are committed, until interrupted.
 *
 * @module
 */

import { Command } from "commander";
import {
  type AuditFilter,
  AuditFollower,
  type AuditRecord,
  EVENT_NAMES,
  eventByName,
  followWindow,
  lastAuditId,
  listAudit,
  resolveAuditFilter,
} from "../lib/audit_log.ts";
import type { EventType } from "../lib/audit.ts";
import { parseDuration } from "../lib/config.ts";
import { UsageError } from "../lib/errors.ts";
import type { Store } from "../lib/storage/store.ts";
import { type AuditFormat, auditWriter } from "./audit_format.ts";
import type { CommandContext } from "./context.ts";
import { flagOption, FLAGS, flagValue, wantsPlain } from "./flags.ts";
import { watchStopSignals } from "./stop_signals.ts";

/** How often `--follow` looks for new events, in ms. */
export const FOLLOW_POLL_MS = 500;

/** Most events `--follow` reads in one look. */
const FOLLOW_BATCH = 1000;

/** The options of `relay audit` as commander parses them. */
interface AuditOptions {
  event?: string[];
  license?: string;
  node?: string;
  user?: string;
  pool?: string;
  since?: string;
  until?: string;
  limit?: string;
  plain?: boolean;
  json?: boolean;
  csv?: boolean;
  follow?: boolean;
}

/** Builds the `audit` command. */
export function auditCommand(context: CommandContext): Command {
  const flags = FLAGS.audit;
  return new Command("audit")
    .description("show the audit log, oldest of the latest events first; --follow for new ones")
    .addOption(flagOption(flags.event))
    .addOption(flagOption(flags.license))
    .addOption(flagOption(flags.node))
    .addOption(flagOption(flags.user))
    .addOption(flagOption(flags.pool))
    .addOption(flagOption(flags.since))
    .addOption(flagOption(flags.until))
    .addOption(flagOption(flags.limit))
    .addOption(flagOption(flags.plain))
    .addOption(flagOption(flags.json))
    .addOption(flagOption(flags.csv))
    .addOption(flagOption(flags.follow))
    .action(async (options: AuditOptions) => {
      const { io } = context;
      const now = context.now();
      const follow = options.follow === true;
      if (follow && options.until !== undefined) {
        throw new UsageError("--until cannot be used with --follow");
      }
      if (options.json && options.csv) throw new UsageError("Give --json or --csv, not both");
      const filter: AuditFilter = {
        events: options.event === undefined ? undefined : parseEvents(options.event),
        license: options.license,
        node: options.node,
        user: options.user,
        pool: options.pool,
        since: options.since === undefined ? undefined : parseTime(options.since, now),
        until: options.until === undefined ? undefined : parseTime(options.until, now),
      };
      // Never undefined: the flag has a default.
      const limit = parseLimit(flagValue(FLAGS.audit.limit, options.limit, io.env)!);
      const format: AuditFormat = options.json
        ? "json"
        : options.csv
        ? "csv"
        : wantsPlain(options.plain, io)
        ? "plain"
        : "box";
      const writer = auditWriter(format, { follow });
      // Watched before anything is read, so an early signal still stops cleanly.
      using stop = follow ? watchStopSignals(io.shutdown) : null;
      const store = await context.openStore();
      try {
        const window = followWindow(context.config().database);
        const { records, follower } = await store.read(async (tx) => {
          const selection = await resolveAuditFilter(tx, filter);
          const records = await listAudit(tx, { ...selection, take: "last", limit });
          const follower = new AuditFollower({
            selection,
            afterId: await lastAuditId(tx),
            batch: FOLLOW_BATCH,
            window,
            clock: () => performance.now(),
          });
          if (stop) await follower.start(tx);
          return { records, follower };
        });
        io.stdout(writer.start(records));
        if (stop) {
          await followLog(store, {
            follower,
            stop: { received: stop.received, stopped: () => stop.stopped },
            write: (batch) => io.stdout(writer.more(batch)),
          });
        }
      } finally {
        await store.close();
      }
    });
}

/**
 * Prints the events `follower` finds committed since the start, looking
 * every {@link FOLLOW_POLL_MS}, until `stop` is received.
 */
async function followLog(
  store: Store,
  options: {
    follower: AuditFollower;
    stop: { received: Promise<void>; stopped: () => boolean };
    write: (records: AuditRecord[]) => void;
  },
): Promise<void> {
  const { follower, stop, write } = options;
  while (!stop.stopped()) {
    const { records, more } = await store.read((tx) => follower.next(tx));
    if (records.length > 0) write(records);
    // A full batch: more may be waiting already.
    if (more) continue;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      stop.received,
      new Promise((resolve) => (timer = setTimeout(resolve, FOLLOW_POLL_MS))),
    ]);
    clearTimeout(timer);
  }
}

/**
 * `--event` values (each may be a comma-separated list) as event types.
 *
 * @throws {UsageError} a name is not an event's; the message lists them all.
 */
export function parseEvents(names: readonly string[]): EventType[] {
  return names.map((name) => {
    const event = eventByName(name);
    if (event === undefined) {
      const known = Object.values(EVENT_NAMES).filter((known) => known !== "unknown");
      throw new UsageError(`Unknown event "${name}": use one of ${known.join(", ")}`);
    }
    return event;
  });
}

/** `2025-12-01T09:00:00Z`, `…+02:00`, with fractions or not; or a date, taken as UTC midnight. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2}))?$/;

/**
 * A `--since`/`--until` value in unix seconds: an RFC 3339 time (or a date,
 * as UTC midnight), or a duration (`1h`, `7d`) before `now`.
 *
 * @throws {UsageError} neither.
 */
export function parseTime(text: string, now: number): number {
  const trimmed = text.trim();
  if (RFC3339.test(trimmed)) {
    const ms = Date.parse(trimmed.replace(" ", "T"));
    if (!Number.isNaN(ms)) return Math.floor(ms / 1000);
  }
  try {
    return now - Math.floor(parseDuration(trimmed) / 1000);
  } catch {
    throw new UsageError(
      `Invalid time "${text}": use an RFC 3339 time (2025-12-01T09:00:00Z) or a duration ago (1h, 7d)`,
    );
  }
}

/**
 * A `--limit` value: a whole number; 0 means no limit (null).
 *
 * @throws {UsageError} not a whole number.
 */
export function parseLimit(text: string): number | null {
  if (!/^\d+$/.test(text.trim())) {
    throw new UsageError(`Invalid limit "${text}": use a whole number (0 for no limit)`);
  }
  const limit = Number(text.trim());
  return limit === 0 ? null : limit;
}
