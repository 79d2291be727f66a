/**
 * The completion model as shell functions that bash and zsh both run (plain
 * `case` and `printf`): the commands, flags and values the completion
 * functions of `bash.ts` and `zsh.ts` look up. Command paths are the words
 * after the program joined by spaces (`""` for the program itself); a
 * lookup key is `path|flag`.
 *
 * @module
 */

import type { CommandModel, CompletionModel, FlagModel } from "./model.ts";

/** `'text'` for a POSIX shell. */
export function shQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The prefix of every function the scripts define: `__relay`. */
export function functionPrefix(model: CompletionModel): string {
  return `__${model.program.replace(/[^A-Za-z0-9_]/g, "_")}`;
}

/**
 * Four functions, `<prefix>_commands PATH`, `<prefix>_flags PATH`,
 * `<prefix>_value PATH FLAG` and `<prefix>_arguments PATH`, each printing
 * lines (see their comments in the output).
 */
export function shData(model: CompletionModel): string {
  const fn = functionPrefix(model);
  const withCommands = model.commands.filter((command) => command.commands.length > 0);
  const withArguments = model.commands.filter((command) => command.argumentChoices.length > 0);
  return [
    `# Subcommands of command path $1 ('' for ${model.program} itself): name<TAB>description.`,
    `${fn}_commands() {`,
    `  case "$1" in`,
    ...withCommands.map((command) =>
      `    ${pathPattern(command)}) printf '%s\\t%s\\n' ${
        command.commands.map((child) => `${shQuote(child.name)} ${shQuote(child.description)}`)
          .join(" ")
      } ;;`
    ),
    `  esac`,
    `}`,
    ``,
    `# Flags of command path $1, the global ones last: name<TAB>description.`,
    `${fn}_flags() {`,
    `  case "$1" in`,
    ...model.commands.filter((command) => command.flags.length > 0).map((command) =>
      `    ${pathPattern(command)}) ${printFlags(command.flags)} ;;`
    ),
    `  esac`,
    `  ${printFlags(model.globalFlags)}`,
    `}`,
    ``,
    `# How flag $2 of command path $1 takes a value, on the first line: switch (none),`,
    `# any, files, pools, or choices (then one choice a line).`,
    `${fn}_value() {`,
    `  case "$1|$2" in`,
    ...model.commands.flatMap((command) => valueCases(command.path.join(" "), command.flags)),
    ...valueCases("*", model.globalFlags),
    `    *) echo switch ;;`,
    `  esac`,
    `}`,
    ``,
    `# Choices of the first argument of command path $1, one a line.`,
    `${fn}_arguments() {`,
    `  case "$1" in`,
    ...withArguments.map((command) =>
      `    ${pathPattern(command)}) printf '%s\\n' ${
        command.argumentChoices.map(shQuote).join(" ")
      } ;;`
    ),
    `  esac`,
    `}`,
  ].join("\n");
}

function pathPattern(command: CommandModel): string {
  return shQuote(command.path.join(" "));
}

function printFlags(flags: FlagModel[]): string {
  const words = flags.flatMap((flag) =>
    flag.names.map((name) => `${shQuote(name)} ${shQuote(flag.description)}`)
  );
  return `printf '%s\\t%s\\n' ${words.join(" ")}`;
}

/** `'serve|--strategy') printf …;;` for each flag that takes a value; `*` for any path. */
function valueCases(path: string, flags: FlagModel[]): string[] {
  return flags.filter((flag) => flag.value !== null).map((flag) => {
    const patterns = flag.names.map((name) =>
      path === "*" ? `*${shQuote(`|${name}`)}` : shQuote(`${path}|${name}`)
    ).join("|");
    const value = flag.value!;
    const lines = value.kind === "choices"
      ? ["choices", ...value.choices]
      : [value.kind === "none" ? "any" : value.kind];
    return `    ${patterns}) printf '%s\\n' ${lines.map(shQuote).join(" ")} ;;`;
  });
}
