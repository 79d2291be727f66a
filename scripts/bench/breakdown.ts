/**
 * Where the time of one lease operation goes, without HTTP: runs Relay's own
 * `claim()`, `release()` or `reap()` (lib/leases.ts) in-process on a
 * benchmark database and times every `Store` method they call, the rest of
 * each transaction being BEGIN, COMMIT (with its fsync) and glue.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-run scripts/bench/breakdown.ts \
 *   --op heartbeat|claim|release|reap [--licenses 100000] [--count 5000] \
 *   [--strategy fifo|lifo|rand] [--no-audit] [--batch 1000] [--pragma key=value]...
 *   [--sql 'STATEMENTS'] [--file-bytes 2700] [--group 64] [--wal] [--checkpointer]
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
import { claim, type LeasePolicy, reap, release, type Strategy } from "../../lib/leases.ts";
import { createLogger } from "../../lib/logger.ts";
import { openSqliteStore } from "../../lib/storage/sqlite/sqlite_store.ts";
import { SqliteTx } from "../../lib/storage/sqlite/statements.ts";
import { buildLicenseDb, checkpoint, leaseDirectly, setHeartbeats } from "./setup.ts";

interface Args {
  op: "heartbeat" | "claim" | "release" | "reap";
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

function parse(args: string[]): Args {
  const out: Args = {
    op: "heartbeat",
    licenses: 100_000,
    count: 5_000,
    strategy: "fifo",
    audit: true,
    batch: 1_000,
    pragmas: {},
    sql: [],
    fileBytes: 2_700,
    group: 1,
    wal: false,
    checkpointer: false,
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const value = () => args[++i];
    if (flag === "--op") out.op = value() as Args["op"];
    else if (flag === "--licenses") out.licenses = Number(value());
    else if (flag === "--count") out.count = Number(value());
    else if (flag === "--strategy") out.strategy = value() as Strategy;
    else if (flag === "--no-audit") out.audit = false;
    else if (flag === "--batch") out.batch = Number(value());
    else if (flag === "--sql") out.sql.push(value());
    else if (flag === "--file-bytes") out.fileBytes = Number(value());
    else if (flag === "--group") out.group = Number(value());
    else if (flag === "--checkpointer") out.checkpointer = true;
    else if (flag === "--wal") {
      out.wal = true;
      out.pragmas.wal_autocheckpoint = "0";
    } else if (flag === "--pragma") {
      const [key, v] = value().split("=");
      out.pragmas[key] = v;
    } else throw new Error(`unknown argument ${flag}`);
  }
  if (!["heartbeat", "claim", "release", "reap"].includes(out.op)) throw new Error("bad --op");
  return out;
}

/**
 * Bytes this process has caused to be written (page-cache dirtying), from
 * /proc/<pid>/io, read through `cat` as Deno lets only --allow-all read /proc.
 */
function writeBytes(): number {
  const { stdout } = new Deno.Command("cat", { args: [`/proc/${Deno.pid}/io`] }).outputSync();
  const io = new TextDecoder().decode(stdout);
  return Number(/^write_bytes: (\d+)$/m.exec(io)?.[1] ?? 0);
}

/**
 * Wraps every statement method (`SqliteTx`) to add its time to `times`. The
 * methods run their SQL before returning their promise, so the time is the
 * statement's own.
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

async function main(): Promise<void> {
  const args = parse(Deno.args);
  const dir = await Deno.makeTempDir({ prefix: "relay_breakdown_" });
  try {
    const path = `${dir}/relay.sqlite`;
    const now = Math.floor(Date.now() / 1000);
    await buildLicenseDb(path, args.licenses, now, args.fileBytes);
    const leased = args.op === "claim" ? 0 : args.licenses;
    if (leased > 0) leaseDirectly(path, { count: leased, prefix: "n", heartbeatAt: now, now });
    if (args.op === "reap") {
      setHeartbeats(path, { prefix: "n", first: 0, end: args.count, heartbeatAt: now - 3600 });
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
            verbosity: 1,
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
    const writtenBefore = writeBytes();
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
      }${args.fileBytes !== 2_700 ? `, file bodies of ${args.fileBytes} random bytes` : ""}${
        args.group > 1 ? `, groups of ${args.group}` : ""
      }: ` +
        `${per(total)} per operation (${JSON.stringify(kinds)})`,
    );
    let inner = 0;
    const transaction = times.get("transaction")?.ms ?? 0;
    for (const [name, { ms, calls }] of [...times].sort((a, b) => b[1].ms - a[1].ms)) {
      if (name === "transaction" || name === "close") continue;
      inner += ms;
      console.log(
        `  ${name.padEnd(22)} ${per(ms)}  (${(calls / operations).toFixed(2)} calls per operation)`,
      );
    }
    console.log(`  ${"BEGIN, COMMIT, glue".padEnd(22)} ${per(transaction - inner)}`);
    if (args.wal) {
      // A WAL frame is a 24-byte header and one 4,096-byte page.
      console.log(
        `  WAL pages written per operation: ${(walBytes / 4120 / operations).toFixed(2)}`,
      );
    }
    if (!args.wal) console.log(`  WAL file at the end: ${(walBytes / 2 ** 20).toFixed(1)} MiB`);
    console.log(
      `  KiB dirtied per operation (write_bytes, checkpoints included): ${
        ((writeBytes() - writtenBefore) / 1024 / operations).toFixed(1)
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
}

if (import.meta.main) await main();
