/**
 * `relay version`, and the version as `--version` and `--help` show it: a
 * node-locked build adds `+node-locked` and the fingerprint's first and last
 * four characters, as the reference does (`0.1.0+node-locked.3646..bf08`).
 *
 * @module
 */

import { Command } from "commander";
import denoJson from "../deno.json" with { type: "json" };
import { goPlatform } from "../lib/host_identity.ts";
import { isLocked, lockDesignation, type NodeLock } from "../lib/node_lock.ts";
import type { CommandContext } from "./context.ts";

/** This Relay's version, from `deno.json`. */
export const VERSION: string = denoJson.version;

/** The version of a build locked as `lock` says: {@link VERSION}, plus the node-locked designation. */
export function versionText(lock: NodeLock): string {
  return `${VERSION}${lockDesignation(lock)}`;
}

/**
 * What a node-locked build adds to the top of `--help`, as the reference:
 * `Version: relay/<version> <os>-<arch> deno <version>`. "" when unlocked, so
 * an unlocked build's help stays as it was.
 */
export function helpVersion(lock: NodeLock): string {
  if (!isLocked(lock)) return "";
  return `\n\nVersion:\n  relay/${versionText(lock)} ${
    goPlatform(Deno.build, "-")
  } deno${Deno.version.deno}`;
}

/** Builds the `version` command. */
export function versionCommand(context: CommandContext): Command {
  return new Command("version")
    .description("print the relay version")
    .action(() => context.io.stdout(`${versionText(context.nodeLock)}\n`));
}
