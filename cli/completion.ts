/**
 * `relay completion bash|zsh|fish|powershell` prints a shell completion
 * script, as Keygen Relay's (cobra's) `completion` command does; the hidden
 * `relay __complete pools` prints the pool names the scripts offer after
 * `--pool`.
 *
 * The scripts are generated from the program tree (`cli/completion/model.ts`),
 * so every command and flag registered in `cli/program.ts` is completed.
 *
 * @module
 */

import { Argument, Command } from "commander";
import { listPools } from "../lib/licenses.ts";
import { bashScript } from "./completion/bash.ts";
import { fishScript } from "./completion/fish.ts";
import { type CompletionModel, completionModel } from "./completion/model.ts";
import { powershellScript } from "./completion/powershell.ts";
import { zshScript } from "./completion/zsh.ts";
import type { CommandContext } from "./context.ts";

/** The shells `relay completion` writes a script for, as cobra names them. */
export const SHELLS = ["bash", "zsh", "fish", "powershell"] as const;

/** One of {@link SHELLS}. */
export type Shell = typeof SHELLS[number];

const SCRIPTS: Record<Shell, (model: CompletionModel) => string> = {
  bash: bashScript,
  zsh: zshScript,
  fish: fishScript,
  powershell: powershellScript,
};

/** How to load each script, shown by `relay completion --help`. */
const INSTALL = `
Loading the script (completion must run the same relay, found on PATH as "relay"):

  bash (bash 4 or later):
    # this shell only
    source <(relay completion bash)
    # every new shell, Linux (the bash-completion package loads the folder)
    relay completion bash > /etc/bash_completion.d/relay
    # every new shell, macOS with Homebrew's bash-completion@2
    relay completion bash > $(brew --prefix)/etc/bash_completion.d/relay
    # or, without bash-completion, in ~/.bashrc:
    source <(relay completion bash)

  zsh:
    # this shell only (after compinit)
    source <(relay completion zsh)
    # every new shell: a file named _relay in a folder of $fpath
    relay completion zsh > "\${fpath[1]}/_relay"
    # completion must be enabled once, in ~/.zshrc:
    autoload -U compinit; compinit

  fish:
    # this shell only
    relay completion fish | source
    # every new shell
    relay completion fish > ~/.config/fish/completions/relay.fish

  powershell:
    # this shell only
    relay completion powershell | Out-String | Invoke-Expression
    # every new shell: add that line to your profile ($PROFILE)

Start a new shell after installing. After --pool, completion offers the pools
in the database named by --database on the line, or RELAY_DATABASE, or
./relay.sqlite, when it can be read (it never creates one).
`;

/** Builds the `completion` command; it reads the program tree it is part of. */
export function completionCommand(context: CommandContext): Command {
  return new Command("completion")
    .description("print a shell completion script (bash, zsh, fish or powershell)")
    .addArgument(new Argument("<shell>", "the shell to complete in").choices(SHELLS))
    .addHelpText("after", INSTALL)
    .action((shell: Shell, _options: unknown, command: Command) => {
      const program = command.parent ?? command;
      context.io.stdout(SCRIPTS[shell](completionModel(program)));
    });
}

/**
 * Builds the hidden `__complete` command the scripts call: `__complete pools`
 * prints the pool names of the configured database, one a line. It opens an
 * existing database only, and prints nothing at all when it cannot.
 */
export function completeCommand(context: CommandContext): Command {
  return new Command("__complete")
    .description("print completion candidates for the shell scripts")
    .addArgument(new Argument("<what>", "what to list").choices(["pools"]))
    .action(async () => {
      let names: string[];
      try {
        const store = await context.openStore();
        try {
          names = (await listPools(store)).map((pool) => pool.name);
        } finally {
          await store.close();
        }
      } catch {
        // Completion shows nothing rather than an error in the middle of a command line.
        return;
      }
      // A name with a line break would be two candidates: leave it out.
      const printable = names.filter((name) => !/[\r\n]/.test(name));
      if (printable.length > 0) context.io.stdout(printable.join("\n") + "\n");
    });
}
