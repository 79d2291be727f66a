/**
 * The command line of every script in `scripts/`, on commander as in `cli/`:
 * one way to build a script's program, to parse it without exiting the
 * process, and to read the values its flags take.
 *
 * Exit codes follow `cli/errors.ts`: 0 after `--help`, 2 for a command line
 * that cannot be parsed or makes no sense (commander has printed why).
 *
 * @module
 */

import { Command, CommanderError, InvalidArgumentError, type OptionValues } from "commander";
import { parsePragma } from "../lib/config.ts";

/** Where a script prints: each call is one message, printed with a newline (like `console.log`). */
export interface ScriptOutput {
  print: (text: string) => void;
  printError: (text: string) => void;
}

/** The process's standard output and standard error. */
export const CONSOLE: ScriptOutput = {
  print: (text) => console.log(text),
  printError: (text) => console.error(text),
};

/** Exit code of a command line that could not be parsed or makes no sense. */
export const EXIT_USAGE = 2;

/**
 * A commander program named `name` that never exits the process itself and
 * prints through `output`. Colours and the help width are fixed here:
 * commander would read them from the environment, which needs `--allow-env`
 * and `deno task mint` runs without it.
 */
export function scriptCommand(
  name: string,
  description: string,
  output: ScriptOutput = CONSOLE,
): Command {
  const withoutNewline = (text: string) => text.replace(/\n$/, "");
  return new Command(name)
    .description(description)
    .helpOption("-h, --help", "print this help")
    .exitOverride()
    .configureOutput({
      writeOut: (text) => output.print(withoutNewline(text)),
      writeErr: (text) => output.printError(withoutNewline(text)),
      getOutHelpWidth: () => 100,
      getErrHelpWidth: () => 100,
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    })
    .showHelpAfterError("(run with --help for usage)");
}

/** A parsed command line: options to run with, or an exit code to end with. */
export type Parsed<T> = { kind: "run"; options: T } | { kind: "exit"; code: number };

/**
 * Parses `args` (without the program name) with `command`, then turns
 * commander's option values and positional arguments into the script's
 * options with `finish`, which throws {@link InvalidArgumentError} for a
 * combination that makes no sense. Returns `{ kind: "exit" }` with 0 after
 * `--help` and {@link EXIT_USAGE} after an error, which commander printed.
 */
export function parseScriptArgs<T>(
  command: Command,
  args: string[],
  finish: (values: OptionValues, positional: string[]) => T,
): Parsed<T> {
  try {
    command.parse(args, { from: "user" });
    try {
      return { kind: "run", options: finish(command.opts(), command.args) };
    } catch (error) {
      if (!(error instanceof InvalidArgumentError)) throw error;
      // Prints "error: …" and the help hint, then throws a CommanderError.
      command.error(`error: ${error.message}`, { exitCode: EXIT_USAGE });
    }
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    return { kind: "exit", code: error.exitCode === 0 ? 0 : EXIT_USAGE };
  }
}

/** A flag value parser for integers of at least `min` (e.g. `--count 1000`). */
export function integerAtLeast(min: number): (text: string) => number {
  return function parseInteger(text) {
    const n = Number(text);
    if (text.trim() === "" || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(
        min === 1 ? "Expected a positive integer" : `Expected an integer of at least ${min}`,
      );
    }
    return n;
  };
}

/** A positive integer flag value. */
export const positiveInteger: (text: string) => number = integerAtLeast(1);

/**
 * A flag value parser for a comma-separated list (`--ns 1000,100000`), each
 * item read by `item`; a repeated flag replaces the list.
 */
export function commaList<T>(item: (text: string) => T): (text: string) => T[] {
  return function parseList(text) {
    return text.split(",").map(item);
  };
}

/** A flag value parser for one of `allowed` (`what` names it in the message). */
export function oneOf<T extends string>(
  allowed: readonly T[],
  what: string,
): (text: string) => T {
  return function parseChoice(text) {
    if (!(allowed as readonly string[]).includes(text)) {
      throw new InvalidArgumentError(`Unknown ${what} "${text}"; one of ${allowed.join(", ")}`);
    }
    return text as T;
  };
}

/** Collects every value of a repeatable flag (`--sql A --sql B`), in order. */
export function repeatable(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * A flag value parser made of a `lib/` parser, which throws a `UsageError`:
 * its message becomes commander's (e.g. `usageChecked(parsePort)`).
 */
export function usageChecked<T>(parse: (text: string) => T): (text: string) => T {
  return function parseChecked(text) {
    try {
      return parse(text);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

/** Collects repeatable `--pragma key=value` flags, each checked as `relay --pragma` checks it. */
export function pragmaList(value: string, previous: string[] = []): string[] {
  usageChecked(parsePragma)(value);
  return [...previous, value.trim()];
}
