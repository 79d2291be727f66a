/**
 * The CLI side of node-locking: a locked build's global flags, and the gate
 * that unlocks it before any command but `help`, `version`, `completion`
 * and `fingerprint` runs (the reference's `PersistentPreRunE`).
 *
 * The lock itself is embedded at build time in `cli/node_lock_build.ts`
 * (`scripts/lock.ts` writes it); the checks are `lib/node_lock.ts`.
 *
 * @module
 */

import type { Command } from "commander";
import { NodeLockError, UsageError, withContext } from "../lib/errors.ts";
import { isLocked, lockedAttributes, type NodeLock, unlock } from "../lib/node_lock.ts";
import type { CommandContext } from "./context.ts";
import { readSmallFile } from "./files.ts";
import { flagOption, FLAGS, flagValue } from "./flags.ts";
import { SYSTEM_HOST } from "./host.ts";

/** Commands that run without unlocking: they say what the build is, or what this host is. */
export const UNGATED_COMMANDS: ReadonlySet<string> = new Set([
  "help",
  "version",
  "completion",
  "fingerprint",
]);

/** The node-locked global flags as commander parses them. */
export interface NodeLockOptions {
  nodeLockedMachineFilePath?: string;
  nodeLockedLicenseKey?: string;
  nodeLockedLicenseKeyFile?: string;
}

/** Adds the node-locked global flags to `program`, in a locked build only (as the reference). */
export function addNodeLockOptions(program: Command, lock: NodeLock): void {
  if (!isLocked(lock)) return;
  const { machineFilePath, licenseKey, licenseKeyFile } = FLAGS.nodeLock;
  program
    .addOption(flagOption(machineFilePath))
    .addOption(flagOption(licenseKey))
    .addOption(flagOption(licenseKeyFile));
}

/**
 * Unlocks a locked build before `command` runs; nothing in an unlocked one.
 * Logs which attributes the build is locked to and the machine file's id
 * and expiry at `-v`; never the license key.
 *
 * @throws {NodeLockError} the machine file or this host does not pass
 *   (`failed to unlock relay: …`, exit 1).
 * @throws {UsageError} both the license key and a key file are given.
 */
export async function unlockBeforeCommand(
  context: CommandContext,
  options: { command: string; lock: NodeLock; flags: NodeLockOptions },
): Promise<void> {
  const { lock, flags } = options;
  if (!isLocked(lock) || UNGATED_COMMANDS.has(options.command)) return;
  const { io } = context;
  const path = flagValue(FLAGS.nodeLock.machineFilePath, flags.nodeLockedMachineFilePath, io.env)!;
  try {
    const file = await unlock(lock, {
      licenseKey: await licenseKey(flags, context),
      readMachineFile: () => readSmallFile(context.path(path), "machine file"),
      host: io.host ?? SYSTEM_HOST,
      now: context.now(),
    });
    context.logger(options.command === "serve" ? "stdout" : "stderr").info("relay unlocked", {
      locked_to: lockedAttributes(lock).join(","),
      machine: file.id,
      machine_file_expires_at: file.fileExpiry?.toISOString() ?? null,
    });
  } catch (error) {
    if (error instanceof NodeLockError) throw withContext(error, "failed to unlock relay");
    throw error;
  }
}

/** The license key from the flag, its file, or their env vars; "" when none is given. */
async function licenseKey(flags: NodeLockOptions, context: CommandContext): Promise<string> {
  const { licenseKey, licenseKeyFile } = FLAGS.nodeLock;
  const { env } = context.io;
  const inline = flagValue(licenseKey, flags.nodeLockedLicenseKey, env);
  const file = flagValue(licenseKeyFile, flags.nodeLockedLicenseKeyFile, env);
  if (inline !== undefined && file !== undefined) {
    throw new UsageError("Give the node-locked license key or a file holding it, not both");
  }
  if (file === undefined) return inline?.trim() ?? "";
  let text: string;
  try {
    text = new TextDecoder().decode(
      await readSmallFile(context.path(file), "license key file", 64 * 1024),
    );
  } catch (error) {
    throw new NodeLockError(`license key could not be read: ${(error as Error).message}`, {
      cause: error,
    });
  }
  // A file usually ends with a newline; a key has no blanks.
  return text.trim();
}
