/**
 * `relay version`.
 *
 * @module
 */

import { Command } from "commander";
import denoJson from "../deno.json" with { type: "json" };
import type { CommandContext } from "./context.ts";

/** This Relay's version, from `deno.json`. */
export const VERSION: string = denoJson.version;

/** Builds the `version` command. */
export function versionCommand(context: CommandContext): Command {
  return new Command("version")
    .description("print the relay version")
    .action(() => context.io.stdout(`${VERSION}\n`));
}
