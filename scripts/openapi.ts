/**
 * Writes `server/openapi.json` from `server/openapi.yaml`, the API's OpenAPI
 * document: the YAML is the source people edit, the JSON module is what the
 * server imports (so `deno compile` embeds it and the binary reads no file
 * and parses no YAML at run time).
 *
 * ```sh
 * deno task openapi            # after editing server/openapi.yaml
 * deno task openapi --check    # exit 1 when the JSON is not the YAML's
 * ```
 *
 * `tests/server/openapi_document_test.ts` fails when the two disagree.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import {
  CONSOLE,
  type Parsed,
  parseScriptArgs,
  scriptCommand,
  type ScriptOutput,
} from "./command_line.ts";

/** The source document, relative to the repository root. */
export const OPENAPI_YAML = "server/openapi.yaml";

/** The generated module, relative to the repository root. */
export const OPENAPI_JSON = "server/openapi.json";

const root = new URL("../", import.meta.url);

/** The YAML document's text rendered as the JSON module's text (2-space indents, final newline). */
export function renderOpenApiJson(yamlText: string): string {
  return JSON.stringify(parse(yamlText), null, 2) + "\n";
}

/** What the script was asked to do. */
export interface OpenApiOptions {
  /** Compare instead of writing. */
  check: boolean;
}

/** Parses the script's command line; prints help or the error through `output`. */
export function parseOpenApiArgs(
  args: string[],
  output: ScriptOutput = CONSOLE,
): Parsed<OpenApiOptions> {
  const command = scriptCommand(
    "deno task openapi",
    `Writes ${OPENAPI_JSON} from ${OPENAPI_YAML}.`,
    output,
  ).option("--check", `write nothing; exit 1 when ${OPENAPI_JSON} is not up to date`);
  return parseScriptArgs(command, args, (values) => ({ check: values.check === true }));
}

async function main(args: string[]): Promise<number> {
  const parsed = parseOpenApiArgs(args);
  if (parsed.kind === "exit") return parsed.code;
  const json = renderOpenApiJson(
    await Deno.readTextFile(fileURLToPath(new URL(OPENAPI_YAML, root))),
  );
  const target = fileURLToPath(new URL(OPENAPI_JSON, root));
  if (parsed.options.check) {
    const current = await Deno.readTextFile(target).catch(() => "");
    if (current === json) return 0;
    console.error(`error: ${OPENAPI_JSON} is not up to date: run deno task openapi`);
    return 1;
  }
  await Deno.writeTextFile(target, json);
  console.log(`wrote ${OPENAPI_JSON}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
