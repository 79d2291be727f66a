/**
 * Where the time of one lease operation goes, without HTTP: runs Relay's own
 * `claim()`, `release()` or `reap()` (lib/leases.ts) in-process on a
 * benchmark database and times every statement method (`Tx`) they call, the rest of
 * each transaction being BEGIN, COMMIT (with its fsync) and glue.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-run scripts/bench/breakdown.ts \
 *   --op heartbeat|claim|release|reap [--licenses 100000] [--count 5000] \
 *   [--strategy fifo|lifo|rand] [--no-audit] [--batch 1000] [--pragma key=value]...
 *   [--sql 'STATEMENTS'] [--file-bytes 2700] [--group 64] [--wal] [--checkpointer]
 * deno run scripts/bench/breakdown.ts --help
 * ```
 *
 * `--sql` runs SQL on the prepared database first, for what-if experiments
 * (e.g. `ANALYZE`, or an extra index) without touching Relay's code, and
 * `--file-bytes` sets the random bytes in each license file's body (2,700,
 * about 3.7 KB of file, by default) to see what the file size costs.
 * `--group N` runs claims, heartbeats or releases N to a transaction, each in
 * a savepoint, as the server's group commit does; `--wal` turns off
 * checkpoints and reports the WAL pages each operation wrote;
 * `--checkpointer` runs the server's background checkpointer beside it.
 *
 * `--op reap` makes `--count` leases expired and reaps them in batches of
 * `--batch` (the server's reaper uses 1,000), printing each batch's time: the
 * longest a request can wait behind one batch.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { parsePragma } from "../../lib/config.ts";
import {
  claim,
  type LeasePolicy,
  reap,
  release,
  STRATEGIES,
  type Strategy,
} from "../../lib/leases.ts";
import { createLogger, VERBOSITY } from "../../lib/logger.ts";
import { openSqliteStore } from "../../lib/storage/sqlite/sqlite_store.ts";
import { SqliteTx } from "../../lib/storage/sqlite/statements.ts";
import {
  CONSOLE,
  integerAtLeast,
  oneOf,
  type Parsed,
  parseScriptArgs,
  positiveInteger,
  pragmaList,
  repeatable,
  scriptCommand,
  type ScriptOutput,
} from "../command_line.ts";
import { writeBytesOf } from "./procs.ts";
import { buildLicenseDb, checkpoint, leaseDirectly, nowSeconds, setHeartbeats } from "./setup.ts";

const OPERATIONS = ["heartbeat", "claim", "release", "reap"] as const;

/** What the breakdown was asked to measure. */
export interface Args {
  op: typeof OPERATIONS[number];
  licenses: number;
  count: number;
  strategy: Strategy;
  audit: boolean;
  batch: number;
  pragmas: Record<string, string>;
  sql: string[];
  fileBytes: number;
  group: number;
  wal: boolean;
  checkpointer: boolean;
}

/** Random bytes of each license file's body by default: a file of about 3.7 KB, as real ones. */
const FILE_BYTES = 2_700;

/** Parses the breakdown's command line; prints help or the error through `output`. */
export function parseBreakdownArgs(args: string[], output: ScriptOutput = CONSOLE): Parsed<Args> {
  const command = scriptCommand(
    "scripts/bench/breakdown.ts",
    "Times Relay's own lease operations in-process on a benchmark database, " +
      "each Store method apart.",
    output,
  )
    .option(
      "--op <operation>",
      `the operation: ${OPERATIONS.join(", ")}`,
      oneOf(OPERATIONS, "operation"),
      "heartbeat",
    )
    .option("--licenses <n>", "licenses in the database", positiveInteger, 100_000)
    .option("--count <n>", "operations to time (reap: leases to expire)", positiveInteger, 5_000)
    .option(
      "--strategy <strategy>",
      `how claims choose a license: ${STRATEGIES.join(", ")}`,
      oneOf(STRATEGIES, "strategy"),
      "fifo",
    )
    .option("--no-audit", "write no audit rows")
    .option("--batch <n>", "reap: leases per batch, as the server's reaper", positiveInteger, 1_000)
    .option("--pragma <key=value>", "extra SQLite pragma, repeatable", pragmaList)
    .option("--sql <statements>", "run SQL on the prepared database first, repeatable", repeatable)
    .option(
      "--file-bytes <n>",
      "random bytes in each license file's body",
      integerAtLeast(0),
      FILE_BYTES,
    )
    .option(
      "--group <n>",
      "operations per transaction, each in a savepoint, as the server's group commit",
      positiveInteger,
      1,
    )
    .option("--wal", "turn checkpoints off and report the WAL pages each operation wrote")
    .option("--checkpointer", "run the server's background checkpointer beside it");
  return parseScriptArgs(command, args, (values) => {
    const wal = values.wal === true;
    // --wal turns checkpoints off unless a --pragma sets them.
    const pragmas: Record<string, string> = wal ? { wal_autocheckpoint: "0" } : {};
    for (const pragma of (values.pragma as string[] | undefined) ?? []) {
      const [key, value] = parsePragma(pragma);
      pragmas[key] = value;
    }
    return {
      op: values.op as Args["op"],
      licenses: values.licenses as number,
      count: values.count as number,
      strategy: values.strategy as Strategy,
      audit: values.audit as boolean,
      batch: values.batch as number,
      pragmas,
      sql: (values.sql as string[] | undefined) ?? [],
      fileBytes: values.fileBytes as number,
      group: values.group as number,
      wal,
      checkpointer: values.checkpointer === true,
    };
  });
}

/**
 * Wraps every statement method (`SqliteTx`) to add its time to `times`. A
 * method runs its SQL before it returns its promise (node:sqlite is
 * synchronous), so the time is the statement's own.
 */
function instrument(times: Map<string, { ms: number; calls: number }>): void {
  const prototype = SqliteTx.prototype as unknown as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(SqliteTx.prototype)) {
    const descriptor = Object.getOwnPropertyDescriptor(SqliteTx.prototype, name);
    if (name === "constructor" || typeof descriptor?.value !== "function") continue;
    const original = descriptor.value as (...args: unknown[]) => unknown;
    prototype[name] = function (this: SqliteTx, ...args: unknown[]) {
      const start = performance.now();
      try {
        return original.apply(this, args);
      } finally {
        const entry = times.get(name) ?? { ms: 0, calls: 0 };
        entry.ms += performance.now() - start;
        entry.calls++;
        times.set(name, entry);
      }
    };
  }
}

async function main(): Promise<number> {
  const parsed = parseBreakdownArgs(Deno.args);
  if (parsed.kind === "exit") return parsed.code;
  const args = parsed.options;
  const dir = await Deno.makeTempDir({ prefix: "relay_breakdown_" });
  try {
    const path = `${dir}/relay.sqlite`;
    const now = nowSeconds();
    await buildLicenseDb(path, args.licenses, now, args.fileBytes);
    const leased = args.op === "claim" ? 0 : args.licenses;
    if (leased > 0) leaseDirectly(path, { count: leased, prefix: "n", heartbeatAt: now, now });
    if (args.op === "reap") {
      setHeartbeats(path, {
        prefix: "n",
        first: 0,
        end: args.count,
        heartbeatAt: now - 3600,
        ttl: 60,
      });
    }
    if (args.sql.length > 0) {
      const db = new DatabaseSync(path);
      for (const sql of args.sql) db.exec(sql);
      db.close();
    }
    checkpoint(path);

    const times = new Map<string, { ms: number; calls: number }>();
    instrument(times);
    const store = openSqliteStore(path, {
      now,
      audit: args.audit,
      pragmas: args.pragmas,
      // As the server runs them: one transaction per group, a savepoint each.
      groupCommit: args.group > 1,
      backgroundCheckpoints: args.checkpointer
        ? {
          logger: createLogger({
            verbosity: VERBOSITY.info,
            json: false,
            now: () => new Date(),
            write: (line) => console.error(line.trimEnd()),
          }),
        }
        : undefined,
    });
    const policy: LeasePolicy = { ttl: 86_400, heartbeats: true, strategy: args.strategy };
    const options = { pool: null, now, policy };
    const kinds: Record<string, number> = {};
    const batches: number[] = [];
    let operations = 0;
    const writtenBefore = writeBytesOf(Deno.pid);
    const start = performance.now();
    if (args.op === "reap") {
      for (;;) {
        const t = performance.now();
        const reaped = await reap(store, { now, ttl: 60, limit: args.batch });
        if (reaped === 0) break;
        batches.push(performance.now() - t);
        operations += reaped;
        kinds.reaped = operations;
        if (reaped < args.batch) break;
      }
    } else {
      const count = args.op === "claim" ? Math.min(args.count, args.licenses) : args.count;
      const one = async (i: number) => {
        const fingerprint = args.op === "claim"
          ? `x${i}`
          : `n${Math.floor(Math.random() * args.licenses)}`;
        const result = args.op === "release"
          ? await release(store, `n${(i * 7919) % args.licenses}`, options)
          : await claim(store, fingerprint, options);
        kinds[result.kind] = (kinds[result.kind] ?? 0) + 1;
      };
      // `--group N` queues N at once: group commit runs them in one transaction.
      for (let i = 0; i < count; i += args.group) {
        const group = [];
        for (let j = i; j < Math.min(count, i + args.group); j++) group.push(one(j));
        await Promise.all(group);
      }
      operations = count;
    }
    const total = performance.now() - start;
    // With --wal nothing was checkpointed: the WAL holds every page each commit wrote.
    const walBytes = Deno.statSync(`${path}-wal`).size;
    await store.close();

    const per = (ms: number) => `${((ms * 1000) / operations).toFixed(1).padStart(8)} µs`;
    console.log(
      `${args.op}, ${args.licenses.toLocaleString("en-US")} licenses, ${args.strategy}, audit ${
        args.audit ? "on" : "off"
      }${Object.keys(args.pragmas).length ? `, pragmas ${JSON.stringify(args.pragmas)}` : ""}${
        args.sql.length ? `, after ${JSON.stringify(args.sql)}` : ""
      }${args.fileBytes !== FILE_BYTES ? `, file bodies of ${args.fileBytes} random bytes` : ""}${
        args.group > 1 ? `, groups of ${args.group}` : ""
      }: ` +
        `${per(total)} per operation (${JSON.stringify(kinds)})`,
    );
    let inner = 0;
    for (const [name, { ms, calls }] of [...times].sort((a, b) => b[1].ms - a[1].ms)) {
      if (name === "finalize") continue;
      inner += ms;
      console.log(
        `  ${name.padEnd(22)} ${per(ms)}  (${(calls / operations).toFixed(2)} calls per operation)`,
      );
    }
    // The rest of the wall time: BEGIN/SAVEPOINT/COMMIT, the queue, promises.
    console.log(`  ${"BEGIN, COMMIT, glue".padEnd(22)} ${per(total - inner)}`);
    if (args.wal) {
      // A WAL frame is a 24-byte header and one 4,096-byte page.
      console.log(
        `  WAL pages written per operation: ${(walBytes / 4120 / operations).toFixed(2)}`,
      );
    }
    if (!args.wal) console.log(`  WAL file at the end: ${(walBytes / 2 ** 20).toFixed(1)} MiB`);
    console.log(
      `  KiB dirtied per operation (write_bytes, checkpoints included): ${
        ((writeBytesOf(Deno.pid) - writtenBefore) / 1024 / operations).toFixed(1)
      }`,
    );
    if (batches.length > 0) {
      const sorted = [...batches].sort((a, b) => a - b);
      console.log(
        `  ${batches.length} batches of up to ${args.batch}: median ${
          sorted[sorted.length >> 1].toFixed(1)
        } ms, max ${sorted[sorted.length - 1].toFixed(1)} ms, total ${(total / 1000).toFixed(2)} s`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main());
