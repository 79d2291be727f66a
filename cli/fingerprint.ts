/**
 * `relay fingerprint`: this machine's fingerprint for node-locking, what
 * `machineid --appid keygen-relay` prints (keygen-sh/machineid's
 * `ProtectedID("keygen-relay")`): give it to the vendor as
 * `BUILD_NODE_LOCKED_FINGERPRINT` and as the machine's fingerprint in Keygen.
 *
 * @module
 */

import { Command } from "commander";
import type { CommandContext } from "./context.ts";
import { SYSTEM_HOST } from "./host.ts";

/** Builds the `fingerprint` command. */
export function fingerprintCommand(context: CommandContext): Command {
  return new Command("fingerprint")
    .description(
      "print this machine's fingerprint for node-locking (HMAC-SHA256 of keygen-relay keyed by the machine id)",
    )
    .action(async () => {
      const host = context.io.host ?? SYSTEM_HOST;
      context.io.stdout(`${await host.fingerprint()}\n`);
    });
}
