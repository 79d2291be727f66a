/**
 * The one place where failures become exit codes and messages.
 *
 * - 0: success (also `--help` and `--version`)
 * - 1: the command failed (`error: …` on stderr)
 * - 2: the command line is wrong (`error: …` on stderr)
 *
 * Operator mistakes never print a stack trace; unexpected errors print theirs
 * only at debug verbosity (`-vvvv`, or `DEBUG=1`).
 *
 * @module
 */

import { CommanderError } from "commander";
import { DatabaseUnavailableError, RelayError } from "../lib/errors.ts";
import { VERBOSITY } from "../lib/logger.ts";
import type { UserPaths } from "./paths.ts";
import type { Secrets } from "./secrets.ts";

/** Exit code of a successful command. */
export const EXIT_OK = 0;
/** Exit code of a command that failed. */
export const EXIT_FAILURE = 1;
/** Exit code of a command line that could not be parsed or makes no sense. */
export const EXIT_USAGE = 2;

/**
 * Reports `error` on `stderr` (unless commander already did) and returns the
 * exit code for it. Paths in the message are quoted as the user typed them
 * (`paths`), though the layers below only saw them resolved; database URLs
 * and passwords never appear (`secrets`). A database server out of reach is
 * one line, `error: database unavailable: <reason>`, exit 1.
 */
export function reportError(
  error: unknown,
  options: {
    stderr: (text: string) => void;
    verbosity: number;
    paths: UserPaths;
    secrets?: Secrets;
  },
): number {
  const { verbosity, paths, secrets } = options;
  const stderr = (text: string) => options.stderr(secrets ? secrets.mask(text) : text);
  if (error instanceof CommanderError) {
    // Commander has written its own message (or the help text) already.
    return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  }
  if (error instanceof DatabaseUnavailableError) {
    const reason = error.message.replace(/^database unavailable: /i, "");
    stderr(`error: database unavailable: ${reason}\n`);
    return EXIT_FAILURE;
  }
  if (error instanceof RelayError) {
    stderr(`error: ${paths.asTyped(error.message)}\n`);
    return error.code === "usage" ? EXIT_USAGE : EXIT_FAILURE;
  }
  const message = error instanceof Error ? error.message : String(error);
  stderr(`error: ${paths.asTyped(message)}\n`);
  if (verbosity >= VERBOSITY.debug && error instanceof Error && error.stack) {
    stderr(`${error.stack}\n`);
  }
  return EXIT_FAILURE;
}
