/**
 * What shell completion offers, read from the commander program tree and the
 * flag table (`cli/flags.ts`): commands (nested ones too), their flags and
 * the global ones, and how to complete each value. A command or flag added
 * to the program is completed without touching the generators.
 *
 * How a value is completed:
 * - an option with `.choices()` (`--strategy`): those words;
 * - a flag named `--pool`: the pools in the database (`relay __complete pools`);
 * - a value written `<path>` or `<…|path>` in the flag table: file names;
 * - anything else: nothing to offer.
 *
 * @module
 */

import type { Command, Help, Option } from "commander";
import { FLAGS, type FlagSpec, helpText } from "../flags.ts";

/** How the value of a flag is completed. */
export type ValueKind =
  | { kind: "none" }
  | { kind: "choices"; choices: readonly string[] }
  | { kind: "pools" }
  | { kind: "files" };

/** One flag as completion sees it. */
export interface FlagModel {
  /** Every name of the flag, the short one first: `["-p", "--port"]`. */
  names: string[];
  description: string;
  /** Null for a switch; how to complete the value otherwise. */
  value: ValueKind | null;
  /** May be given more than once (`-vv`, list flags, `--pragma`). */
  repeatable: boolean;
}

/** One command, the program itself included (with an empty path). */
export interface CommandModel {
  /** The words that name it after the program: `["serve"]`; `[]` for the program. */
  path: string[];
  description: string;
  /** Its own flags, without the global ones. */
  flags: FlagModel[];
  /** Its subcommands, by name and description. */
  commands: { name: string; description: string }[];
  /** The choices of its first positional argument, if it has any. */
  argumentChoices: readonly string[];
}

/** Everything the generators need. */
export interface CompletionModel {
  /** The program's name, as the shell sees the command: `relay`. */
  program: string;
  /** Flags accepted before or after any command. */
  globalFlags: FlagModel[];
  /** The program and every visible command below it, parents first. */
  commands: CommandModel[];
}

/** Reads the model from `program` (hidden commands and options are left out). */
export function completionModel(program: Command): CompletionModel {
  const help = program.createHelp();
  const globalFlags = flagsOf(help, program);
  const globalNames = new Set(globalFlags.flatMap((flag) => flag.names));
  const commands: CommandModel[] = [];
  function visit(command: Command, path: string[]): void {
    const children = help.visibleCommands(command);
    commands.push({
      path,
      description: firstLine(command.description()),
      // The program's own options are the global ones; `--help` is one of them.
      flags: path.length === 0
        ? []
        : flagsOf(help, command).filter((flag) =>
          !flag.names.every((name) => globalNames.has(name))
        ),
      commands: children.map((child) => ({
        name: child.name(),
        description: firstLine(child.description()),
      })),
      argumentChoices: command.registeredArguments[0]?.argChoices ?? [],
    });
    // The implicit `help` command has no command of its own to visit.
    for (const child of children) {
      if (command.commands.includes(child)) visit(child, [...path, child.name()]);
    }
  }
  visit(program, []);
  return { program: program.name(), globalFlags, commands };
}

/** The visible options of `command`, `--help` included. */
function flagsOf(help: Help, command: Command): FlagModel[] {
  return help.visibleOptions(command).map((option) => {
    const spec = specOf(option);
    return {
      names: [option.short, option.long].filter((name): name is string => name !== undefined),
      description: firstLine(spec?.description ?? option.description),
      value: option.required || option.optional ? valueKind(option) : null,
      repeatable: spec?.list === true || spec?.repeatable === true,
    };
  });
}

function valueKind(option: Option): ValueKind {
  if (option.argChoices) return { kind: "choices", choices: option.argChoices };
  if (option.long === "--pool") return { kind: "pools" };
  // `<path>`, `<key|path>`: a file name.
  if (/<(?:[^>]*\|)?path>/.test(option.flags)) return { kind: "files" };
  return { kind: "none" };
}

/** The entry of the flag table behind `option`: the same syntax and help text. */
function specOf(option: Option): FlagSpec | undefined {
  for (const section of Object.values(FLAGS)) {
    for (const spec of Object.values(section) as FlagSpec[]) {
      if (spec.flags === option.flags && helpText(spec) === option.description) return spec;
    }
  }
  return undefined;
}

/** Descriptions are shown on one line, without the env-var suffix of `--help`. */
function firstLine(text: string): string {
  return text.split("\n")[0].replace(/\s*\[\$[A-Z0-9_]+(=[^\]]*)?\]$/, "").trim();
}
