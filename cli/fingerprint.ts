/**
 * `relay fingerprint`: this machine's fingerprint for node-locking, what
 * `machineid --appid keygen-relay` prints (keygen-sh/machineid's
 * `ProtectedID("keygen-relay")`): give it to the vendor as
 * `BUILD_NODE_LOCKED_FINGERPRINT` and as the machine's fingerprint in Keygen.
 *
 * @module
 */

import { Command } from "commander";
import { NodeLockError } from "../lib/errors.ts";
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
      let fingerprint: string;
      try {
        fingerprint = await host.fingerprint();
      } catch (error) {
        // The reference's wording, as when a locked build cannot fingerprint its host.
        throw new NodeLockError(
          `machine could not determine fingerprint: ${(error as Error).message}`,
          { cause: error },
        );
      }
      context.io.stdout(`${fingerprint}\n`);
    });
}
