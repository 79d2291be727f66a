/**
 * A real PostgreSQL server of the test suite's own: a fresh cluster in a
 * temporary folder (`relay_pg_*`), listening on 127.0.0.1 at a free port,
 * with trust authentication and superuser `postgres`. Debian's binaries run
 * it where they are installed, else npm's (see `postgres_binaries.ts`); as
 * root it runs as `postgres` or `nobody`.
 *
 * @module
 */

import { join } from "node:path";
import { connectPostgres } from "../lib/storage/postgres/connect.ts";
import {
  type BinariesKind,
  canWrite,
  copyNpmBinaries,
  debianBinDir,
  type RunAs,
  runAs,
} from "./postgres_binaries.ts";

/** A running server; disposing it stops it and removes its folder. */
export interface PostgresServer extends AsyncDisposable {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`: a superuser on the `postgres` database. */
  adminUrl: string;
  /** TCP port on 127.0.0.1. */
  port: number;
  /** Whose binaries run it. */
  binaries: BinariesKind;
  /** The cluster's data folder (`postmaster.pid` is there while it runs). */
  dataDir: string;
  /** Stops the server (`pg_ctl stop -m <mode>`, default `fast`) and waits until it has exited. */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** Starts it again on the same data folder and port, and waits until it accepts connections. */
  start(): Promise<void>;
  /** Stops it and removes its folder, synchronously: for an `unload` handler. */
  disposeSync(): void;
}

/** Options of {@linkcode startPostgresServer}. */
export interface PostgresServerOptions {
  /** Whose binaries: default Debian's when installed, else npm's. */
  binaries?: BinariesKind;
}

/** Settings for a throwaway test cluster (appended to `postgresql.conf`). */
const SETTINGS = [
  "listen_addresses = '127.0.0.1'",
  // The suite runs three replicas per test, each with its own pool.
  "max_connections = 400",
  "shared_buffers = 32MB",
  // Nothing here must survive a crash of the machine.
  "fsync = off",
  "full_page_writes = off",
  "synchronous_commit = on",
];

/** How many free ports to try when another process takes the chosen one first. */
const PORT_ATTEMPTS = 5;

/**
 * Creates a cluster in a new `relay_pg_*` folder of `TMPDIR` and starts it.
 * Resolves once it accepts connections; rejects with the server's log when
 * it cannot start.
 */
export async function startPostgresServer(
  options: PostgresServerOptions = {},
): Promise<PostgresServer> {
  const debian = options.binaries === "npm" ? undefined : await debianBinDir();
  if (options.binaries === "debian" && !debian) {
    throw new Error(
      'PostgreSQL is not installed in "/usr/lib/postgresql" (apt-get install postgresql)',
    );
  }
  const user = await runAs();
  const dir = await makeFolder(user);
  let cluster: Cluster | undefined;
  try {
    const bin = debian ?? await copyNpmBinaries(join(dir, "native"));
    cluster = new Cluster(bin, dir, user);
    await cluster.init();
    for (let attempt = 1;; attempt++) {
      const port = freePort();
      await Deno.writeTextFile(join(cluster.dataDir, "postgresql.auto.conf"), `port = ${port}\n`);
      const started = await cluster.start();
      if (started.ok) {
        const running = server(cluster, port, debian ? "debian" : "npm");
        await ping(running.adminUrl);
        await watchdog(cluster);
        return running;
      }
      if (!started.portTaken || attempt === PORT_ATTEMPTS) throw new Error(started.message);
    }
  } catch (error) {
    await cluster?.stop("immediate").catch(() => {});
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}

/**
 * A `relay_pg_*` folder in TMPDIR. As root, it belongs to the user that runs
 * PostgreSQL; when that user cannot reach TMPDIR (one inside a 0700
 * folder of root's, as `mktemp -d` makes), the folder is made in /tmp instead.
 */
async function makeFolder(user: RunAs | undefined): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "relay_pg_" });
  if (!user) return dir;
  await Deno.chmod(dir, 0o755);
  await Deno.chown(dir, user.uid, user.gid);
  if (await canWrite(user, dir)) return dir;
  await Deno.remove(dir);
  const fallback = await Deno.makeTempDir({ dir: "/tmp", prefix: "relay_pg_" });
  await Deno.chmod(fallback, 0o755);
  await Deno.chown(fallback, user.uid, user.gid);
  return fallback;
}

/** A port nothing listens on right now (the server may still lose it to another process). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

type StartResult = { ok: true } | { ok: false; portTaken: boolean; message: string };

/** The programs of one cluster, run as the right user. */
class Cluster {
  readonly dataDir: string;
  readonly #bin: string;
  readonly #dir: string;
  readonly #user: RunAs | undefined;

  constructor(bin: string, dir: string, user: RunAs | undefined) {
    this.#bin = bin;
    this.#dir = dir;
    this.#user = user;
    this.dataDir = join(dir, "data");
  }

  get dir(): string {
    return this.#dir;
  }

  /** `initdb`, then the test settings and a socket folder inside the temporary folder. */
  async init(): Promise<void> {
    await this.#run(
      "initdb",
      [
        ["-D", this.dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"],
        ["--no-sync", "--no-instructions"],
      ].flat(),
    );
    const socket = join(this.#dir, "socket");
    await Deno.mkdir(socket, { mode: 0o700 });
    if (this.#user) await Deno.chown(socket, this.#user.uid, this.#user.gid);
    // A unix socket's path is limited to 107 bytes; a deep TMPDIR gets TCP only.
    const sockets = socket.length < 90 ? socket : "";
    const settings = [...SETTINGS, `unix_socket_directories = '${sockets}'`].join("\n");
    await Deno.writeTextFile(join(this.dataDir, "postgresql.conf"), `\n${settings}\n`, {
      append: true,
    });
  }

  /** `pg_ctl start -w`: returns once the server accepts connections, or failed. */
  async start(): Promise<StartResult> {
    const log = join(this.#dir, "server.log");
    await Deno.writeTextFile(log, "");
    if (this.#user) await Deno.chown(log, this.#user.uid, this.#user.gid);
    const output = await this.#command("pg_ctl", [
      ...["start", "-D", this.dataDir, "-l", log, "-w", "-t", "60", "-s"],
    ]).output();
    if (output.success) return { ok: true };
    const text = await Deno.readTextFile(log);
    return {
      ok: false,
      portTaken: /could not bind|address already in use/i.test(text),
      message: `PostgreSQL did not start (${join(this.#bin, "pg_ctl")}): ${text.trim()}`,
    };
  }

  /** `pg_ctl stop -w`; a server that is not running is stopped already. */
  async stop(mode: "fast" | "immediate"): Promise<void> {
    const pidFile = join(this.dataDir, "postmaster.pid");
    if (!(await exists(pidFile))) return;
    const error = await this.#run("pg_ctl", ["stop", "-D", this.dataDir, "-m", mode, "-w", "-s"])
      .then(() => undefined, (error: Error) => error);
    // A server that had died already leaves its pid file, and pg_ctl removes it.
    if (error && await exists(pidFile)) throw error;
  }

  /** {@linkcode stop}, synchronously. */
  stopSync(mode: "fast" | "immediate"): void {
    try {
      Deno.statSync(join(this.dataDir, "postmaster.pid"));
    } catch {
      return;
    }
    this.#command("pg_ctl", ["stop", "-D", this.dataDir, "-m", mode, "-w", "-s"]).outputSync();
  }

  /** The shell command that stops this server, for the watchdog. */
  stopCommand(): string {
    const argv = [
      ...(this.#user?.prefix ?? []),
      ...[join(this.#bin, "pg_ctl"), "stop", "-D", this.dataDir, "-m", "immediate", "-w"],
    ];
    return argv.map(quote).join(" ");
  }

  async #run(program: string, args: string[]): Promise<void> {
    const output = await this.#command(program, args).output();
    if (!output.success) {
      const text = new TextDecoder().decode(output.stderr).trim();
      throw new Error(`PostgreSQL's ${program} ${args[0]} failed: ${text}`);
    }
  }

  #command(program: string, args: string[]): Deno.Command {
    const argv = [...(this.#user?.prefix ?? []), join(this.#bin, program), ...args];
    return new Deno.Command(argv[0], {
      args: argv.slice(1),
      // The user PostgreSQL runs as may not enter this process's folder (root's home).
      cwd: this.#dir,
      clearEnv: true,
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", LC_ALL: "C" },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    });
  }
}

/**
 * Stops the server and removes its folder if this process dies without
 * disposing it (a killed test run, Ctrl-C): a detached shell that checks once
 * a second that this process and the folder are both still there.
 */
async function watchdog(cluster: Cluster): Promise<void> {
  const dir = quote(cluster.dir);
  const script = `while kill -0 ${Deno.pid} 2>/dev/null && [ -d ${dir} ]; do sleep 1; done; ` +
    `[ -d ${dir} ] && { ${cluster.stopCommand()}; rm -rf ${dir}; }`;
  // In a session of its own, so that a signal to this process's group (Ctrl-C, `timeout`) spares it.
  await new Deno.Command("sh", {
    args: [
      "-c",
      `command -v setsid >/dev/null && exec setsid sh -c "$0" || exec sh -c "$0"`,
      `(${script}) </dev/null >/dev/null 2>&1 &`,
    ],
    cwd: "/",
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
}

function server(cluster: Cluster, port: number, binaries: BinariesKind): PostgresServer {
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let disposed = false;
  return {
    adminUrl,
    port,
    binaries,
    dataDir: cluster.dataDir,
    stop: (mode = "fast") => cluster.stop(mode),
    async start() {
      const started = await cluster.start();
      if (!started.ok) throw new Error(started.message);
      await ping(adminUrl);
    },
    async [Symbol.asyncDispose]() {
      if (disposed) return;
      disposed = true;
      try {
        await cluster.stop("fast");
      } finally {
        await Deno.remove(cluster.dir, { recursive: true });
      }
    },
    disposeSync() {
      if (disposed) return;
      disposed = true;
      try {
        cluster.stopSync("fast");
      } finally {
        Deno.removeSync(cluster.dir, { recursive: true });
      }
    },
  };
}

/** One query, to prove that the server answers on TCP. */
async function ping(url: string): Promise<void> {
  const sql = connectPostgres(url, { max: 1 });
  try {
    await sql`select 1`;
  } finally {
    await sql.end();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A word for `sh`, in single quotes. */
function quote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
