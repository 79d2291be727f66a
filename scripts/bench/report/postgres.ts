/**
 * The "PostgreSQL: 1 and 3 replicas" section of the benchmark report:
 * claims and heartbeats on PostgreSQL with each replica count, beside SQLite
 * with its one server from the same run, and how they were measured.
 *
 * @module
 */

import { fmt } from "../format.ts";
import type { Results, ScaleOutRow } from "../results.ts";
import { latency, onOff, table } from "./markdown.ts";

/** The heading of the section. */
export const POSTGRES_HEADING = "## PostgreSQL: 1 and 3 replicas";

/** The section's lines; empty when the run did not measure it. */
export function postgresSection(results: Results): string[] {
  const pg = results.postgres;
  if (!pg) return [];
  const sqlite = pg.rows.find((row) => row.engine === "sqlite");
  const settings = pg.server.settings;
  const setting = (name: string) => settings[name] ?? "?";
  return [
    POSTGRES_HEADING,
    "",
    `N=${fmt(pg.n)} licenses, strategy ${pg.strategy}, audit ${onOff(pg.audit)}, ` +
    `${pg.connections} keep-alive connections spread evenly over the replicas (connection c talks to ` +
    "replica c mod replicas). Each cell: answers per second (× SQLite's rate in this run), then " +
    "latency p50 / p99 in ms. Machine CPU: the whole machine's busy share during the runs " +
    `(${results.machine.cores} cores = 100 %).`,
    "",
    table(
      [
        "engine",
        "replicas",
        "claim 201/s",
        "claim ms",
        "heartbeat 202/s",
        "heartbeat ms",
        "machine CPU % claim / heartbeat",
        "non-2xx",
      ],
      pg.rows.map((row) => rowCells(row, sqlite)),
      ["l", "r", "r", "r", "r", "r", "r", "r"],
    ),
    "",
    `How it is measured: PostgreSQL ${pg.server.version}, ` +
    `${
      pg.server.private
        ? "a private server started for the run"
        : "the server given by `--postgres`"
    } ` +
    `on loopback (TCP to 127.0.0.1), fsync=${setting("fsync")}, synchronous_commit=${
      setting("synchronous_commit")
    }, ` +
    `full_page_writes=${setting("full_page_writes")}, shared_buffers=${
      setting("shared_buffers")
    }, max_connections=${setting("max_connections")}. ` +
    `The run's SQLite templates were copied in with \`relay migrate --from <template>.sqlite --to postgres://…\` ` +
    `(${pg.migrateSeconds.free.toFixed(1)} s for the free pool, ${
      pg.migrateSeconds.leased.toFixed(1)
    } s for the leased one), ` +
    "and every row starts from fresh copies (`CREATE DATABASE … TEMPLATE`), as the SQLite row from fresh files. " +
    "Each replica is a real `relay serve --database postgres://…` process on its own port with its own " +
    "connection pool. Claims run in rounds on N free licenses (each round released again), heartbeats on a " +
    'copy where all N are leased, as in "Leasing under load". All of it shares the machine\'s ' +
    `${results.machine.cores} cores: the replicas, PostgreSQL's backends and the load generator, so ` +
    "3 replicas measure contention for the same CPUs, not the capacity of 3 machines.",
    "",
  ];
}

/** One row: rates with their ratio to SQLite's, latencies, machine CPU and answers not 2xx. */
function rowCells(row: ScaleOutRow, sqlite: ScaleOutRow | undefined): string[] {
  const vs = (rate: number, base: number | undefined) =>
    row === sqlite || base === undefined || !(base > 0) ? "" : ` (${(rate / base).toFixed(2)}×)`;
  const busy = (run: ScaleOutRow["claim"]) =>
    fmt((run.cpu.machineBusy / run.cpu.machineTotal) * 100);
  const non2xx = row.claim.load.non2xx + row.release.load.non2xx + row.heartbeat.load.non2xx;
  return [
    row.engine === "sqlite" ? "SQLite" : "PostgreSQL",
    String(row.replicas),
    `${fmt(row.claim.load.rate)}${vs(row.claim.load.rate, sqlite?.claim.load.rate)}`,
    latency(row.claim.load),
    `${fmt(row.heartbeat.load.rate)}${vs(row.heartbeat.load.rate, sqlite?.heartbeat.load.rate)}`,
    latency(row.heartbeat.load),
    `${busy(row.claim)} / ${busy(row.heartbeat)}`,
    String(non2xx + row.serverErrors),
  ];
}
