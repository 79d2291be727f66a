/**
 * What a flag is (`FlagSpec`), and how its setting is read: from the flag,
 * else its env vars, else its default. The flags themselves are the one
 * table in `cli/flags.ts`, which re-exports this module.
 *
 * @module
 */

import { Option } from "commander";
import { parseEnvFlag } from "../lib/config.ts";

/** The environment as the CLI sees it (`Io.env`). */
export type Env = Readonly<Record<string, string | undefined>>;

/** One flag of one command. */
export interface FlagSpec {
  /** Commander's syntax: `-p, --port <port>`; a flag without `<value>` is a switch. */
  readonly flags: string;
  /**
   * Environment variables that stand in for the flag, in order of precedence;
   * `--help` names the first. A value flag takes the first one set and not
   * empty; a switch is on when any of them is true (`1`, `true`, `yes`, `on`).
   */
  readonly env: readonly string[];
  /** The value when neither the flag nor an env var gives one. */
  readonly default?: string;
  /** Help text, without the env-var suffix that {@link helpText} adds. */
  readonly description: string;
  /** The command fails without it. */
  readonly required?: true;
  /** Repeatable, and each value may be a comma-separated list. */
  readonly list?: true;
  /** Repeatable, each value on its own (`-vv`, `--pragma`); shell completion offers it again. */
  readonly repeatable?: true;
}

/** Whether the flag takes no value (`--plain`, `--no-audit`, `-v`). */
export function isSwitch(spec: FlagSpec): boolean {
  return !/[<[]/.test(spec.flags);
}

/**
 * The help line: the description, then the first env var as the reference
 * Relay shows it, `[$RELAY_PORT=6349]`, `[$RELAY_POOL]` (no default) or
 * `[$RELAY_NO_AUDIT=1]` (a switch).
 */
export function helpText(spec: FlagSpec): string {
  if (spec.env.length === 0) return spec.description;
  const value = isSwitch(spec) ? "=1" : spec.default === undefined ? "" : `=${spec.default}`;
  return `${spec.description} [$${spec.env[0]}${value}]`;
}

/** The commander option of `spec`, with its help text, list parser and mandatory mark. */
export function flagOption(spec: FlagSpec): Option {
  const option = new Option(spec.flags, helpText(spec));
  if (spec.list) option.argParser(collectList);
  if (spec.required) option.makeOptionMandatory();
  return option;
}

/**
 * A value flag's setting: the flag's value, else the first of its env vars
 * that is set and not empty, else its default (undefined if it has none).
 */
export function flagValue(spec: FlagSpec, given: string | undefined, env: Env): string | undefined {
  return given ?? envValue(env, ...spec.env) ?? spec.default;
}

/** Whether any env var of a switch is true (`1`, `true`, `yes`, `on`, any case). */
export function envSwitch(spec: FlagSpec, env: Env): boolean {
  return spec.env.some((name) => parseEnvFlag(env[name]));
}

/** The first of the named environment variables that is set and not empty. */
export function envValue(env: Env, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value !== "") return value;
  }
  return undefined;
}

/** Splits repeated and comma-separated flag values into one list. */
export function collectList(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(",").map((item) => item.trim()).filter(Boolean)];
}
