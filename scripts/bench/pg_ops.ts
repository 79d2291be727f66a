/**
 * In-process cost of a claim and a heartbeat on PostgreSQL: `claim()` of
 * `lib/leases.ts` on a store opened with `openStore()`, without HTTP. For
 * each of concurrency 1 and `--concurrency` (default 64): N fresh claims
 * (one per node), then N heartbeats (claims by the nodes that hold those
 * leases); reports wall time, round trips (queries sent on a connection)
 * and this process's CPU per operation.
 *
 *     deno run -A scripts/bench/pg_ops.ts postgres://postgres@127.0.0.1:55432/postgres \
 *       [--n 2000] [--concurrency 64] [--rounds 3]
 *
 * The URL is an admin URL: the script creates and drops a database of its own.
 *
 * @module
 */

// @ts-types="@types/pg"
import pg from "pg";
import process from "node:process";
import { parseArgs } from "node:util";
import { claim, type LeasePolicy } from "../../lib/leases.ts";
import { openStore } from "../../lib/storage/open.ts";
import { connectPostgres } from "../../lib/storage/postgres/connect.ts";

const { values: args, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { n: { type: "string" }, concurrency: { type: "string" }, rounds: { type: "string" } },
});
const admin = positionals[0] ?? Deno.env.get("RELAY_TEST_POSTGRES") ?? "";
const N = Number(args.n ?? 2000);
const CONCURRENCY = Number(args.concurrency ?? 64);
const ROUNDS = Number(args.rounds ?? 3);
const POLICY: LeasePolicy = { ttl: 3600, heartbeats: true, strategy: "fifo" };
const T0 = 1_800_000_000;

// Every statement goes through Client#query (the pool's too): one per round trip.
let queries = 0;
const query = pg.Client.prototype.query;
// deno-lint-ignore no-explicit-any
(pg.Client.prototype as any).query = function (this: pg.Client, ...rest: unknown[]) {
  queries++;
  // deno-lint-ignore no-explicit-any
  return (query as any).apply(this, rest);
};

async function run(
  label: string,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<void> {
  const q0 = queries;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < N) await op(next++);
    }),
  );
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  console.log(
    `${label.padEnd(22)} c=${String(concurrency).padStart(2)}  ${
      (N / wall * 1000).toFixed(0).padStart(5)
    } ops/s  ${(wall / N * concurrency).toFixed(3)} ms/op latency  ` +
      `${((queries - q0) / N).toFixed(2)} queries/op  ${(cpuMs / N).toFixed(3)} ms CPU/op ` +
      `(${(cpu.system / 1000 / N).toFixed(3)} system)`,
  );
}

const name = `relay_pgops_${Deno.pid}`;
const server = connectPostgres(admin, { max: 1 });
await server.unsafe(`DROP DATABASE IF EXISTS ${name}`);
await server.unsafe(`CREATE DATABASE ${name}`);
const url = new URL(admin);
url.pathname = `/${name}`;
try {
  const store = await openStore(url.href, { now: T0, poolSize: CONCURRENCY });
  const setup = connectPostgres(url.href, { max: 1 });
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const concurrency of [1, CONCURRENCY]) {
        await setup`TRUNCATE licenses, nodes, audit_logs`;
        await setup`
          INSERT INTO licenses (guid, file, key, created_at)
          SELECT 'lic-' || g, convert_to('file-' || g, 'UTF8'), 'KEY-' || g, ${T0}
          FROM generate_series(1, ${N}::int) g ORDER BY g`;
        const options = { pool: null, now: T0 + round, policy: POLICY };
        const expect = (kind: string) => (result: { kind: string }) => {
          if (result.kind !== kind) throw new Error(`Expected ${kind}, got ${result.kind}`);
        };
        await run(
          "claim (created)",
          concurrency,
          (i) => claim(store, `node-${i}`, options).then(expect("created")),
        );
        await run(
          "heartbeat (extended)",
          concurrency,
          (i) => claim(store, `node-${i}`, options).then(expect("extended")),
        );
      }
    }
  } finally {
    await setup.end();
    await store.close();
  }
} finally {
  await server.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await server.end();
}
