/**
 * `relay leases`: who holds a license right now, as FlexNet's `lmstat`
 * shows it: a summary line per pool, then every lease with its node,
 * license, pool, claim, last heartbeat and expiry.
 *
 * @module
 */

import { Command } from "commander";
import { DEFAULT_EXPIRY_WARNING_SECONDS } from "../lib/expiry.ts";
import { type Lease, leaseReport, type PoolSummary } from "../lib/lease_report.ts";
import type { CommandContext } from "./context.ts";
import { flagOption, FLAGS, flagValue, wantsPlain } from "./flags.ts";
import { formatTime, renderBoxTable, renderPlainTable, SEATS_COLUMN } from "./output.ts";
import { formatSpan } from "../lib/time.ts";
import { holderJson, holderLabel } from "../lib/holders.ts";

/** The options of `relay leases` as commander parses them. */
interface LeasesOptions {
  pool?: string;
  plain?: boolean;
  json?: boolean;
}

/** Column titles of the lease table. */
export const LEASE_COLUMNS = [
  "node",
  "license",
  "pool",
  "claimed_at",
  "last_heartbeat_at",
  "expires_at",
  "expires_in",
  "status",
];

/** Builds the `leases` command. */
export function leasesCommand(context: CommandContext): Command {
  return new Command("leases")
    .description("show every lease (node, license, pool, times) and a summary of each pool")
    .addOption(flagOption(FLAGS.leases.pool))
    .addOption(flagOption(FLAGS.leases.plain))
    .addOption(flagOption(FLAGS.leases.json))
    .action(async (options: LeasesOptions) => {
      const { io } = context;
      const pool = flagValue(FLAGS.leases.pool, options.pool, io.env);
      const now = context.now();
      const within = DEFAULT_EXPIRY_WARNING_SECONDS;
      const store = await context.openStore();
      let report;
      try {
        report = await leaseReport(store, { pool, now, within });
      } finally {
        await store.close();
      }
      if (options.json) {
        io.stdout(
          JSON.stringify({
            pools: report.pools.map(summaryJson),
            leases: report.leases.map((lease) => leaseJson(lease, now)),
          }) + "\n",
        );
        return;
      }
      if (report.pools.length === 0) {
        io.stdout("license pool is empty\n");
        return;
      }
      const summary = report.pools.map((pool) => summaryLine(pool, within) + "\n").join("");
      if (report.leases.length === 0) {
        io.stdout(`${summary}\nno license is leased\n`);
        return;
      }
      // A `seats` column (used/total) only when a multi-seat license is leased.
      const seats = report.leases.some((lease) => lease.seats > 1);
      const table = {
        columns: seats ? [...LEASE_COLUMNS, SEATS_COLUMN] : LEASE_COLUMNS,
        rows: report.leases.map((lease) => {
          const row = leaseRow(lease, now);
          return seats ? [...row, `${lease.seatsUsed}/${lease.seats}`] : row;
        }),
      };
      const rendered = wantsPlain(options.plain, io)
        ? renderPlainTable(table)
        : renderBoxTable(table);
      io.stdout(`${summary}\n${rendered}`);
    });
}

/**
 * `pool prod: 250 licenses, 212 leased, 38 free, 3 files expiring within 7
 * days, 5 denials in the last 24h`; expired leases and expired files only
 * when there are any.
 */
export function summaryLine(pool: PoolSummary, within: number): string {
  const parts = [
    count(pool.licenses, "license"),
    `${pool.leased} leased`,
    ...(pool.expiredLeases > 0 ? [`${count(pool.expiredLeases, "expired lease")} not reaped`] : []),
    `${pool.free} free`,
    `${count(pool.expiring, "file")} expiring within ${days(within)}`,
    ...(pool.expired > 0 ? [`${count(pool.expired, "file")} expired`] : []),
    `${count(pool.denials, "denial")} in the last 24h`,
  ];
  const name = pool.poolName === null ? "no pool" : `pool ${pool.poolName}`;
  return `${name}: ${parts.join(", ")}`;
}

/** One lease as a row of {@link LEASE_COLUMNS}. */
function leaseRow(lease: Lease, now: number): string[] {
  return [
    holderLabel(lease.nodeFingerprint),
    lease.licenseGuid,
    lease.poolName ?? "-",
    formatTime(lease.claimedAt),
    formatTime(lease.lastHeartbeatAt),
    formatTime(lease.leaseExpiresAt),
    lease.leaseExpiresAt === null ? "-" : formatSpan(lease.leaseExpiresAt - now),
    lease.state,
  ];
}

function leaseJson(lease: Lease, now: number): Record<string, unknown> {
  const time = (seconds: number | null) => seconds === null ? null : formatTime(seconds);
  return {
    ...holderJson(lease.nodeFingerprint),
    node_id: lease.nodeId,
    license: lease.licenseGuid,
    pool: lease.poolName,
    status: lease.state,
    claimed_at: time(lease.claimedAt),
    last_heartbeat_at: time(lease.lastHeartbeatAt),
    expires_at: time(lease.leaseExpiresAt),
    expires_in: lease.leaseExpiresAt === null ? null : lease.leaseExpiresAt - now,
    seats: lease.seats,
    seats_used: lease.seatsUsed,
  };
}

function summaryJson(pool: PoolSummary): Record<string, unknown> {
  return {
    pool: pool.poolName,
    licenses: pool.licenses,
    leased: pool.leased,
    expired_leases: pool.expiredLeases,
    free: pool.free,
    expiring: pool.expiring,
    expired: pool.expired,
    denials_24h: pool.denials,
  };
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function days(seconds: number): string {
  return seconds % 86_400 === 0 ? count(seconds / 86_400, "day") : formatSpan(seconds);
}
