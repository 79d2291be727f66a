/**
 * `deno task test`: starts one PostgreSQL server for the whole suite (see
 * `tests/postgres_server.ts`), runs `deno test --parallel` on `tests/` with
 * `RELAY_TEST_POSTGRES` naming it, then stops the server, also on Ctrl-C.
 * Exits with the test run's exit code.
 *
 * Arguments go to `deno test`; when none of them names a file or folder,
 * `tests/` is added (`deno task test --filter claim`, `deno task test
 * tests/lib/config_test.ts`). With `RELAY_TEST_POSTGRES` set already, that
 * server is used and none is started.
 *
 * @module
 */

import { type PostgresServer, startPostgresServer } from "../tests/postgres_server.ts";

/** The permissions the tests run with. */
const TEST_PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-net",
  "--allow-sys",
];

/** Whether `arg` names an existing file or folder (rather than a flag or a flag's value). */
function isPath(arg: string): boolean {
  if (arg.startsWith("-")) return false;
  try {
    Deno.statSync(arg);
    return true;
  } catch {
    return false;
  }
}

/** The `deno test` arguments for this script's arguments. */
function testArgs(args: string[]): string[] {
  const rest = args[0] === "--" ? args.slice(1) : args;
  const paths = rest.some(isPath) ? [] : ["tests/"];
  return ["test", "--parallel", ...TEST_PERMISSIONS, ...rest, ...paths];
}

async function main(args: string[]): Promise<number> {
  let server: PostgresServer | undefined;
  let url = Deno.env.get("RELAY_TEST_POSTGRES");
  if (!url) {
    server = await startPostgresServer();
    url = server.adminUrl;
    console.error(`PostgreSQL for the tests: ${url} (${server.binaries}'s binaries)`);
  }
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: testArgs(args),
      env: { RELAY_TEST_POSTGRES: url },
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    // Ctrl-C reaches the whole process group, so the test run stops on its own; this
    // process waits for it, then stops the server. A signal sent to this process alone is
    // passed on.
    const signals = ["SIGINT", "SIGTERM"] as const;
    const forward = signals.map((signal) => {
      const handler = () => {
        try {
          child.kill(signal);
        } catch {
          // It has exited already.
        }
      };
      Deno.addSignalListener(signal, handler);
      return () => Deno.removeSignalListener(signal, handler);
    });
    const status = await child.status;
    forward.forEach((remove) => remove());
    return status.code;
  } finally {
    await server?.[Symbol.asyncDispose]();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
