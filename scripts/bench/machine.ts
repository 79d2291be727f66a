/**
 * What the benchmark ran on: CPU, memory, kernel, Deno, the load generator,
 * the file system of the temporary folder and its fsync latency, and the
 * commit measured.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import type { Generator } from "./load.ts";
import { readProc } from "./procs.ts";
import type { Machine } from "./results.ts";

const REPO = fileURLToPath(new URL("../..", import.meta.url));

/** Probes the machine; `dir` is the temporary folder, whose disk it times. */
export async function machineInfo(
  generator: Generator,
  dir: string,
  clientProcesses: number,
): Promise<Machine> {
  const cpu = /^model name\s*:\s*(.+)$/m.exec(readOrEmpty("/proc/cpuinfo"))?.[1] ?? "unknown";
  const memKiB = Number(/^MemTotal:\s+(\d+)/m.exec(readOrEmpty("/proc/meminfo"))?.[1] ?? NaN);
  return {
    code: gitState(),
    cores: navigator.hardwareConcurrency,
    cpu,
    memoryGiB: memKiB / 2 ** 20,
    kernel: readOrEmpty("/proc/sys/kernel/osrelease").trim() || Deno.build.os,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    generator: generator === "wrk"
      ? await wrkVersion()
      : `Deno client (${clientProcesses} processes)`,
    filesystem: filesystemOf(dir),
    fdatasync: await fdatasyncLatency(dir),
  };
}

/** The commit checked out, and whether the code measured has changes not committed. */
export function gitState(): string {
  try {
    const git = (...args: string[]) =>
      new TextDecoder().decode(
        new Deno.Command("git", { args, cwd: REPO, stdout: "piped", stderr: "null" }).outputSync()
          .stdout,
      ).trim();
    const commit = git("rev-parse", "--short", "HEAD");
    // Changes to the benchmark itself do not change what is measured.
    const dirty = git("status", "--porcelain", "--untracked-files=no").split("\n")
      .some((line) => line.trim() !== "" && !/ (scripts\/bench|BENCHMARKS\.md)/.test(line));
    return commit ? `${commit}${dirty ? " with uncommitted changes" : ""}` : "unknown";
  } catch {
    return "unknown";
  }
}

function readOrEmpty(path: string): string {
  try {
    return readProc(path);
  } catch {
    return "";
  }
}

async function wrkVersion(): Promise<string> {
  const out = await new Deno.Command("wrk", { args: ["-v"], stdout: "piped", stderr: "piped" })
    .output();
  const first = new TextDecoder().decode(out.stdout).split("\n")[0].trim();
  return `${first.replace(/ Copyright.*$/, "")}, Lua script, one thread per connection`;
}

/** The mount that holds `dir`: file system type, device and mount point. */
function filesystemOf(dir: string): string {
  const mounts = readOrEmpty("/proc/mounts").split("\n").map((l) => l.split(" "))
    .filter((f) => f.length > 3);
  const real = Deno.realPathSync(dir);
  const mount = mounts
    .filter(([, point]) =>
      real === point || real.startsWith(point.endsWith("/") ? point : point + "/")
    )
    .sort((x, y) => y[1].length - x[1].length)[0];
  return mount ? `${mount[2]} on ${mount[0]} (${mount[1]})` : "unknown";
}

/** p50 and p99 in ms of a 4 KiB write + fdatasync in `dir`, as a WAL commit does. */
async function fdatasyncLatency(dir: string): Promise<Machine["fdatasync"]> {
  const probe = await Deno.open(`${dir}/fsync-probe`, {
    create: true,
    write: true,
    truncate: true,
  });
  const block = new Uint8Array(4096);
  const times: number[] = [];
  try {
    for (let i = 0; i < 200; i++) {
      await probe.write(block);
      const t = performance.now();
      probe.syncDataSync();
      times.push(performance.now() - t);
    }
  } finally {
    probe.close();
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(times.length / 2)], p99: times[Math.floor(times.length * 0.99)] };
}
