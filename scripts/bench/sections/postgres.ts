/**
 * The "postgres" section: claims and heartbeats under load on PostgreSQL
 * with 1 and 3 `relay serve` replicas, beside SQLite with its one server,
 * measured the same way in the same run (same pool size N, strategy fifo,
 * audit on, the full-load connection count).
 *
 * PostgreSQL is a private server started for the run (or `--postgres`);
 * the SQLite templates of the run are copied into it with `relay migrate`,
 * and every measurement gets a fresh copy (`CREATE DATABASE … TEMPLATE`), as
 * the SQLite measurement gets a fresh file.
 *
 * @module
 */

import { fmt } from "../format.ts";
import { log } from "../log.ts";
import { measureClaims, measureClusterHeartbeats } from "../cluster.ts";
import type { Context } from "../measure.ts";
import { migrateInto, openBenchPostgres } from "../postgres.ts";
import type { PostgresResult, Results, ScaleOutRow } from "../results.ts";
import type { Templates } from "../templates.ts";

/** The one strategy and audit setting the section measures (the defaults of `relay serve`). */
const STRATEGY = "fifo";
const AUDIT = true;

/** Where a row's claims and heartbeats run. */
interface RowDatabases {
  engine: ScaleOutRow["engine"];
  replicas: number;
  /** A fresh database of N free licenses (a path or a URL). */
  claims: string;
  /** A fresh database of N leased licenses. */
  heartbeats: string;
}

/** Runs the section: SQLite with one server, then PostgreSQL with each replica count. */
export async function runPostgresSection(
  context: Context,
  templates: Templates,
): Promise<Pick<Results, "postgres">> {
  const { n, replicas } = context.profile.postgres;
  const rows: ScaleOutRow[] = [];
  const sqliteClaims = `${context.dir}/scale-out.sqlite`;
  await templates.copyFree(n, sqliteClaims);
  rows.push(
    await measureRow(context, n, {
      engine: "sqlite",
      replicas: 1,
      claims: sqliteClaims,
      heartbeats: await templates.leasedWork(n),
    }),
  );
  await templates.discardLeasedWork(n);
  await Deno.remove(sqliteClaims).catch(() => {});

  await using pg = await openBenchPostgres(context.options.postgres);
  const server = await pg.describe();
  log(
    `PostgreSQL ${server.version} (${server.private ? "private server" : "--postgres"}): ` +
      Object.entries(server.settings).map(([k, v]) => `${k}=${v}`).join(", "),
  );
  const migrateSeconds = {
    free: await migrateInto(await templates.free(n), await pg.createDatabase("free")),
    leased: await migrateInto(await templates.leased(n), await pg.createDatabase("leased")),
  };
  log(
    `relay migrate of ${fmt(n)} licenses into PostgreSQL: ${migrateSeconds.free.toFixed(1)} s ` +
      `free, ${migrateSeconds.leased.toFixed(1)} s leased`,
  );
  for (const count of replicas) {
    const claims = await pg.createDatabase(`claims_${count}`, "free");
    const heartbeats = await pg.createDatabase(`heartbeats_${count}`, "leased");
    rows.push(
      await measureRow(context, n, { engine: "postgres", replicas: count, claims, heartbeats }),
    );
    await pg.dropDatabase(`claims_${count}`);
    await pg.dropDatabase(`heartbeats_${count}`);
  }
  const postgres: PostgresResult = {
    n,
    strategy: STRATEGY,
    audit: AUDIT,
    connections: context.connections,
    server,
    migrateSeconds,
    rows,
  };
  return { postgres };
}

/** Claims (with their releases) and heartbeats of one engine and replica count. */
async function measureRow(
  context: Context,
  n: number,
  row: RowDatabases,
): Promise<ScaleOutRow> {
  const label = `${row.engine}, ${row.replicas} replica(s), N=${fmt(n)} ${STRATEGY}`;
  const common = { replicas: row.replicas, n, label, strategy: STRATEGY, audit: AUDIT } as const;
  const claims = await measureClaims(context, { ...common, database: row.claims });
  const heartbeats = await measureClusterHeartbeats(context, {
    ...common,
    database: row.heartbeats,
  });
  return {
    engine: row.engine,
    replicas: row.replicas,
    claim: claims.claim,
    release: claims.release,
    heartbeat: heartbeats.heartbeat,
    claimRounds: claims.rounds,
    serverErrors: claims.serverErrors + heartbeats.serverErrors,
  };
}
