/**
 * Read-only and full disks for a `relay` child, by whatever means this
 * process has, so the failure-mode tests run as root (CI), as a non-root user
 * and as root in an ordinary container (no CAP_SYS_ADMIN) alike, and each
 * setting meets every fault by at least one real means:
 *
 * - read-only: a tmpfs remounted read-only (needs CAP_SYS_ADMIN); file and
 *   folder modes (as root, `relay` runs without CAP_DAC_OVERRIDE through
 *   `setpriv`, which needs CAP_SETPCAP, since root's override ignores modes).
 * - full: a 1 MB tmpfs (needs CAP_SYS_ADMIN); a WAL file that is a `/dev/full`
 *   device node (needs CAP_MKNOD; SQLite opens WAL files with O_NOFOLLOW, so
 *   a symlink is refused); `RLIMIT_FSIZE` with SIGXFSZ ignored (needs nothing;
 *   writes then fail with EFBIG, which SQLite reports as an I/O error).
 *
 * Privileges are read from the effective capability set, not the uid: root
 * in a container lacks CAP_SYS_ADMIN.
 *
 * @module
 */

/** Capability numbers from `<linux/capability.h>`. */
const CAP_SETPCAP = 8;
const CAP_SYS_ADMIN = 21;
const CAP_MKNOD = 27;

/** The capabilities that let root ignore file modes. */
const MODE_OVERRIDES = "dac_override,dac_read_search,fowner";

/**
 * This process's effective capability set (`CapEff`), or none where there is
 * no `/proc`. Read by `cat`, since Deno lets only `--allow-all` read `/proc`.
 */
export async function effectiveCapabilities(): Promise<bigint> {
  const output = await new Deno.Command("cat", {
    args: [`/proc/${Deno.pid}/status`],
    stdout: "piped",
    stderr: "null",
  }).output();
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(new TextDecoder().decode(output.stdout))?.[1];
  return hex === undefined ? 0n : BigInt(`0x${hex}`);
}

/** Whether capability number `cap` is in the set `caps`. */
function has(caps: bigint, cap: number): boolean {
  return ((caps >> BigInt(cap)) & 1n) === 1n;
}

/** A folder `<dir>/mnt` for a database, and the fault to bring on it. */
export interface FaultyFolder extends AsyncDisposable {
  /** The folder, empty when made. */
  path: string;
  /** Brings the fault on: makes the folder read-only, or the disk full. Idempotent. */
  apply(): Promise<void>;
  /** `runCli`'s `wrap`: how `relay` must run to meet the fault. */
  wrap: readonly string[];
}

/** One means of bringing a read-only or full disk on a `relay` child. */
export interface DiskFault {
  /** What it is, for test step names. */
  name: string;
  /** What `relay`'s error line says when a write meets it. */
  error: RegExp;
  /** Makes `<dir>/mnt` for a database of at most about `size` (a tmpfs size, as `4m`). */
  folder(dir: string, size: string): Promise<FaultyFolder>;
}

/** Runs a command, quietly; throws with its output if it fails. */
async function must(command: string, ...args: string[]): Promise<void> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim();
    throw new Error(`${command} ${args.join(" ")} failed: ${stderr}`);
  }
}

/** `<dir>/mnt` as a tmpfs of `size`, unmounted on dispose. */
async function tmpfs(dir: string, size: string) {
  const path = `${dir}/mnt`;
  await Deno.mkdir(path);
  await must("mount", "-t", "tmpfs", "-o", `size=${size},mode=0755`, "tmpfs", path);
  // Lazily: a child that still has a file open there must not keep it mounted.
  return { path, [Symbol.asyncDispose]: () => must("umount", "-l", path) };
}

/** A tmpfs remounted read-only: writes fail with EROFS whoever makes them. */
const READ_ONLY_TMPFS: DiskFault = {
  name: "a tmpfs remounted read-only",
  error: /read-only|readonly|unable to open/i,
  async folder(dir, size) {
    const mount = await tmpfs(dir, size);
    return { ...mount, wrap: [], apply: () => must("mount", "-o", "remount,ro", mount.path) };
  },
};

/** Read-only by modes: 0444 files in a 0555 folder, given back on dispose. */
function readOnlyModes(root: boolean): DiskFault {
  return {
    name: root ? "file modes, relay without CAP_DAC_OVERRIDE" : "file modes",
    error: /read-only|readonly|unable to open|permission denied/i,
    async folder(dir) {
      const path = `${dir}/mnt`;
      await Deno.mkdir(path);
      const setMode = async (file: number, folder: number) => {
        for await (const entry of Deno.readDir(path)) {
          if (entry.isFile) await Deno.chmod(`${path}/${entry.name}`, file);
        }
        await Deno.chmod(path, folder);
      };
      return {
        path,
        wrap: root
          ? [
            "setpriv",
            `--bounding-set=-${MODE_OVERRIDES.replaceAll(",", ",-")}`,
            `--inh-caps=-${MODE_OVERRIDES.replaceAll(",", ",-")}`,
            "--",
          ]
          : [],
        apply: () => setMode(0o444, 0o555),
        [Symbol.asyncDispose]: () => setMode(0o644, 0o755),
      };
    },
  };
}

/** A 1 MB tmpfs: the add's WAL frames fill it part-way (ENOSPC). */
const FULL_TMPFS: DiskFault = {
  name: "a 1 MB tmpfs",
  error: /database or disk is full/,
  async folder(dir) {
    return { ...await tmpfs(dir, "1m"), wrap: [], apply: async () => {} };
  },
};

/** The WAL is a `/dev/full` node (char 1:7): its first write fails with ENOSPC. */
const FULL_DEVICE: DiskFault = {
  name: "a WAL that is /dev/full",
  error: /database or disk is full/,
  async folder(dir) {
    const path = `${dir}/mnt`;
    await Deno.mkdir(path);
    return {
      path,
      wrap: [],
      // SQLite deletes the WAL when the last connection closes: make it again.
      async apply() {
        const wal = `${path}/relay.sqlite-wal`;
        await Deno.remove(wal).catch(() => {});
        await must("mknod", "-m", "0600", wal, "c", "1", "7");
      },
      [Symbol.asyncDispose]: async () => {},
    };
  },
};

/**
 * `relay` under a file size limit of 512 blocks (256 KB in dash, 512 KB in
 * bash): above a small database, below the WAL of a large add. SIGXFSZ is
 * ignored (kept across exec), so writes past it fail with EFBIG.
 */
const FILE_SIZE_LIMIT: DiskFault = {
  name: "a file size limit (RLIMIT_FSIZE)",
  error: /disk I\/O error/,
  async folder(dir) {
    const path = `${dir}/mnt`;
    await Deno.mkdir(path);
    return {
      path,
      wrap: ["sh", "-c", 'trap "" XFSZ && ulimit -f 512 && exec "$@"', "sh"],
      apply: async () => {},
      [Symbol.asyncDispose]: async () => {},
    };
  },
};

/**
 * Whether a device node made here can be opened: not on a `nodev` mount
 * (a tmpfs `/tmp` often is).
 */
async function deviceNodesWork(dir: string): Promise<boolean> {
  const probe = `${dir}/full-probe`;
  try {
    await must("mknod", "-m", "0600", probe, "c", "1", "7");
    (await Deno.open(probe, { write: true })).close();
    return true;
  } catch {
    return false;
  } finally {
    await Deno.remove(probe).catch(() => {});
  }
}

/**
 * Every means this process has of making a folder read-only; none only for
 * root with neither CAP_SYS_ADMIN nor CAP_SETPCAP.
 */
export async function readOnlyFaults(): Promise<DiskFault[]> {
  const caps = await effectiveCapabilities();
  const faults: DiskFault[] = [];
  if (has(caps, CAP_SYS_ADMIN)) faults.push(READ_ONLY_TMPFS);
  if (Deno.uid() !== 0) faults.push(readOnlyModes(false));
  else if (has(caps, CAP_SETPCAP)) faults.push(readOnlyModes(true));
  return faults;
}

/** Every means this process has of filling a disk (`dir`: a scratch folder to probe in). */
export async function fullDiskFaults(dir: string): Promise<DiskFault[]> {
  const caps = await effectiveCapabilities();
  const faults: DiskFault[] = [];
  if (has(caps, CAP_SYS_ADMIN)) faults.push(FULL_TMPFS);
  if (has(caps, CAP_MKNOD) && await deviceNodesWork(dir)) faults.push(FULL_DEVICE);
  faults.push(FILE_SIZE_LIMIT);
  return faults;
}
