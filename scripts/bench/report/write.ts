/**
 * Writes the benchmark report: renders it, keeps the notes of the file it
 * replaces, formats it with `deno fmt` (the project checks the file) and
 * prints it up to the method.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import type { Results } from "../results.ts";
import { NOTES_BEGIN, NOTES_END, renderReport } from "./render.ts";

const REPO = fileURLToPath(new URL("../../..", import.meta.url));

/** The notes between the markers of the report at `path`; empty if it has none. */
async function readNotes(path: string): Promise<string> {
  try {
    const text = await Deno.readTextFile(path);
    const begin = text.indexOf(NOTES_BEGIN);
    const end = text.indexOf(NOTES_END);
    if (begin < 0 || end < begin) return "";
    return text.slice(text.indexOf("\n", begin) + 1, end);
  } catch {
    return "";
  }
}

/** How the method section describes the load generator of `results`. */
function generatorCommand(results: Results): string {
  const generator = results.generator ??
    (results.machine.generator.startsWith("wrk") ? "wrk" : "deno");
  return generator === "wrk"
    ? "wrk 4.1 (`wrk -t C -c C -d S --timeout 10s -s <generated Lua>`), one thread per connection"
    : `the Deno client of \`scripts/bench/client.ts\` in ${
      results.clientProcesses ?? 2
    } separate processes`;
}

/**
 * Renders the report of `results` to `outOption` (default: BENCHMARKS.md,
 * or bench-out/BENCHMARKS.quick.md for a quick run), keeping the notes of
 * the file it replaces, and prints it up to the method with `print`;
 * returns its path.
 */
export async function writeReport(
  results: Results,
  outOption: string | null,
  print: (text: string) => void = console.log,
): Promise<string> {
  const out = outOption ??
    (results.mode === "quick" ? `${REPO}bench-out/BENCHMARKS.quick.md` : `${REPO}BENCHMARKS.md`);
  const report = renderReport(results, await readNotes(out), generatorCommand(results));
  await Deno.mkdir(out.slice(0, Math.max(0, out.lastIndexOf("/"))) || ".", { recursive: true });
  await Deno.writeTextFile(out, report);
  // As `deno fmt` would write it (the project checks it), wrapping long lines.
  await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", out],
    cwd: REPO,
    stdout: "null",
    stderr: "null",
  }).output().catch(() => {});
  print("");
  print(report.slice(0, report.indexOf("## How it is measured")));
  return out;
}
