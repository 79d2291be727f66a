/**
 * Entry point of the `relay` binary: runs the CLI program against this
 * process and exits with its code.
 *
 * @module
 */

import { run } from "./cli/program.ts";

if (import.meta.main) {
  const encoder = new TextEncoder();
  const code = await run(Deno.args, {
    stdout: (text) => writeAll(Deno.stdout, encoder.encode(text)),
    stderr: (text) => writeAll(Deno.stderr, encoder.encode(text)),
    env: Deno.env.toObject(),
    stdoutIsTerminal: Deno.stdout.isTerminal(),
    stderrIsTerminal: Deno.stderr.isTerminal(),
    now: () => new Date(),
  });
  Deno.exit(code);
}

function writeAll(stream: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += stream.writeSync(bytes.subarray(written));
}
