/**
 * Child processes of the benchmark: every process it spawns is registered
 * here, so a failure or Ctrl-C anywhere still kills them all
 * ({@link killAll}). Also reads `/proc` for a process's memory and CPU time.
 *
 * @module
 */

const children = new Set<Deno.ChildProcess>();

/** A spawned process whose output is read line by line. */
export interface Spawned {
  child: Deno.ChildProcess;
  pid: number;
  /** Every stdout line so far. */
  stdout: string[];
  /** Every stderr line so far. */
  stderr: string[];
  /** Bytes read from stdout so far. */
  stdoutBytes: number;
  /** Resolves with the exit status once the process exited and its output was read. */
  done: Promise<Deno.CommandStatus>;
  /** Called with each stdout line as it arrives. */
  onStdout?: (line: string) => void;
  /** Called with each stderr line as it arrives. */
  onStderr?: (line: string) => void;
  /** Sends a signal (ignoring a process that already exited). */
  kill(signal?: Deno.Signal): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit status. */
  stop(graceMs?: number): Promise<Deno.CommandStatus>;
}

/** Spawns `command args` with piped output and registers it. */
export function spawn(
  command: string,
  args: string[],
  options: {
    cwd?: string;
    env?: Record<string, string>;
    stdin?: "piped" | "null";
    /** Count stdout's bytes without keeping its lines. */
    discardStdout?: boolean;
  } = {},
): Spawned {
  const child = new Deno.Command(command, {
    args,
    cwd: options.cwd,
    env: options.env,
    clearEnv: options.env !== undefined,
    stdin: options.stdin ?? "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.add(child);
  const spawned: Spawned = {
    child,
    pid: child.pid,
    stdout: [],
    stderr: [],
    stdoutBytes: 0,
    done: undefined as unknown as Promise<Deno.CommandStatus>,
    kill(signal: Deno.Signal = "SIGKILL") {
      try {
        child.kill(signal);
      } catch {
        // Already exited.
      }
    },
    stop(graceMs = 10_000) {
      spawned.kill("SIGTERM");
      return exitWithin(spawned, graceMs);
    },
  };
  const pump = async (
    stream: ReadableStream<Uint8Array>,
    lines: string[],
    which: "out" | "err",
  ) => {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of stream) {
      if (which === "out") spawned.stdoutBytes += chunk.length;
      if (which === "out" && options.discardStdout) continue;
      const text = decoder.decode(chunk, { stream: true });
      let start = 0;
      let newline;
      while ((newline = text.indexOf("\n", start)) >= 0) {
        const line = pending + text.slice(start, newline);
        pending = "";
        start = newline + 1;
        lines.push(line);
        (which === "out" ? spawned.onStdout : spawned.onStderr)?.(line);
      }
      pending += text.slice(start);
    }
    if (pending) lines.push(pending);
  };
  spawned.done = (async () => {
    const [status] = await Promise.all([
      child.status,
      pump(child.stdout, spawned.stdout, "out"),
      pump(child.stderr, spawned.stderr, "err"),
    ]);
    children.delete(child);
    return status;
  })();
  return spawned;
}

/** Kills every registered process that is still running and waits for them. */
export async function killAll(): Promise<void> {
  const running = [...children];
  for (const child of running) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
  }
  await Promise.allSettled(running.map((child) => child.status));
}

/** Waits for `promise`, failing after `ms` with `what` in the message. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Waits for `process` to exit, killing it (SIGKILL) if it still runs after
 * `ms`; resolves with its exit status either way.
 */
export async function exitWithin(process: Spawned, ms: number): Promise<Deno.CommandStatus> {
  const timer = setTimeout(() => process.kill(), ms);
  try {
    return await process.done;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A file under /proc. Deno allows reading /proc only with --allow-all, so it
 * is read by `cat` (--allow-run, which the benchmark needs anyway).
 */
export function readProc(path: string): string {
  const output = new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "piped" })
    .outputSync();
  if (!output.success) {
    throw new Error(`cannot read ${path}: ${new TextDecoder().decode(output.stderr).trim()}`);
  }
  return new TextDecoder().decode(output.stdout);
}

/** VmRSS and VmHWM of a process, in MiB. */
export function memoryOf(pid: number): { rssMiB: number; hwmMiB: number } {
  const status = readProc(`/proc/${pid}/status`);
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  return { rssMiB: kib("VmRSS") / 1024, hwmMiB: kib("VmHWM") / 1024 };
}

/** CPU seconds (user + system) of a process; of its main thread with `mainThread`. */
export function cpuSecondsOf(pid: number, mainThread = false): number {
  const path = mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`;
  const stat = readProc(path);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 Hz on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Bytes a process caused to be written to storage (page-dirtying time), from /proc/<pid>/io. */
export function writeBytesOf(pid: number): number {
  return Number(/^write_bytes:\s+(\d+)/m.exec(readProc(`/proc/${pid}/io`))?.[1] ?? NaN);
}

/** Busy and total CPU jiffies of the whole machine (from /proc/stat). */
export function machineCpu(): { busy: number; total: number } {
  const line = readProc("/proc/stat").split("\n")[0];
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const total = values.reduce((a, b) => a + b, 0);
  const idle = values[3] + (values[4] ?? 0);
  return { busy: total - idle, total };
}

/** A free TCP port on 127.0.0.1 (free when this returns; good enough for a benchmark). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
