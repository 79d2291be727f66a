/**
 * The closing sections of the benchmark report: how it is measured, and the
 * command lines that reproduce it. `{C}` and `{generator}` are filled in per
 * run.
 *
 * @module
 */

const METHOD = `## How it is measured

- **Server**: the real \`relay serve\`, spawned as \`deno run --allow-read --allow-write --allow-env --allow-net main.ts [--no-audit] --database <tmp> serve --port 0 --bind 127.0.0.1 --strategy <s> --ttl 24h\` (the long TTL keeps the prepared leases live; it changes no cost). Its port is read from its JSON start-up line.
- **Databases** are prepared without the server: licenses are inserted through the product's own \`openStore()\` and \`Store.insertLicense()\` in one transaction, with unique random file bodies framed like Keygen license files (about 3.7 KB, the size of a real one); leases are written directly into \`nodes\` and \`licenses\` (triggers keep \`free_counts\` right). Every configuration starts from a fresh copy, flushed to disk before the server starts.
- **Load**: {generator}. {C} keep-alive connections, each a strictly sequential loop (wrk with one thread per connection, so each connection's claim → heartbeats → release sequence never races itself). Each request is timed by the generator itself (wrk: \`clock_gettime\` in Lua, since wrk 4.1's own histogram adds synthetic "coordinated omission" samples); a rate is answers over the span from the first request sent to the last answer. Every answer's status is counted; the table's last column counts answers that were not 2xx plus server error log lines.
- **Claims** (\`PUT /v1/nodes/<fresh fingerprint>\`, expect 201) each take a license, and wrk's \`-d\` is only a time limit, so each claim run gives every connection a quota that together equals the free licenses; a connection stops (\`wrk.thread:stop()\`) after its quota, and the run after all of them (or the time limit). Then every fingerprint that got an answer is released (\`DELETE\`, expect 204): that is the release measurement. With N=1,000 one round takes a fraction of a second, so rounds repeat (up to 40) until about as many seconds of claims were measured as for N=100,000; their histograms are merged. Claims thus see pools from all free to all leased.
- **Heartbeats** (\`PUT\` of leased fingerprints, expect 202) run on a database where all N licenses are leased, each connection cycling through its share of the N nodes.
- **Ceiling**: \`scripts/bench/ceiling.ts\`, a bare \`Deno.serve\` that answers each request after one upsert into a SQLite table keyed by the path (node:sqlite, WAL, synchronous=FULL, busy_timeout=5000, foreign_keys=ON), driven by the same generator with the same request patterns: fresh paths for claims, a fixed set for heartbeats (also the reference for releases), the cycle pattern for cycles. The ratios in the tables are to this ceiling. Relay commits the lease operations that arrive together in one transaction (group commit), which one upsert per fsync cannot match, so the same script is also run with group commit (\`ceiling, group commit\`): the ceiling of Relay's own design.
- Before each measured run the server answers a second of \`DELETE\`s of unknown fingerprints (404), to warm up V8 and the SQLite cache.

## Reproduce

\`\`\`sh
apt-get install wrk          # optional: without wrk the Deno client is used
deno task bench              # full run, 8–10 minutes on 2 cores; rewrites BENCHMARKS.md
deno task bench --quick      # N = 1,000 only, short runs (about 1 minute), bench-out/BENCHMARKS.quick.md
deno task bench --only reap,startup --out /tmp/b.md     # some sections only
deno task bench --quick --only postgres                 # SQLite beside PostgreSQL with 1 and 3 replicas
deno task bench --from-json bench-out/results-full.json # the report again, measuring nothing
\`\`\`

Options: \`--connections N\`, \`--load wrk|deno\`, \`--client-processes N\`, \`--tmp-dir DIR\` (put it on the disk the production database will live on: its fsync latency matters), \`--ns 100000\` and \`--strategies fifo,rand\` (leasing runs for these only, for A/B comparisons), \`--postgres postgres://postgres@127.0.0.1:5432/postgres\` (the postgres section on that server, in \`relay_bench_*\` databases it drops again, instead of a private server started for the run). Raw results, with every latency histogram, go to \`bench-out/results-<full|quick>.json\`. To see where a server's time goes: \`scripts/bench/profile.ts\` (CPU profile of \`relay serve\` under one load pattern) and \`scripts/bench/breakdown.ts\` (lease operations in-process, each SQL method timed, with what-if options); their headers give the command lines.`;

/** "How it is measured" and "Reproduce", for a run at `connections` with this load generator. */
export function methodSection(connections: number, generatorCommand: string): string[] {
  return [
    METHOD.replaceAll("{C}", String(connections)).replaceAll("{generator}", generatorCommand),
    "",
  ];
}
