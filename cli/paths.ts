/**
 * Paths as the user typed them, taken from the folder the user ran the
 * command in.
 *
 * `deno task relay …` runs `main.ts` in the folder of `deno.json`, not in the
 * user's folder; Deno passes the user's folder as `INIT_CWD` (npm scripts do
 * the same). A relative path is therefore resolved against `INIT_CWD` when it
 * is set, and against the process's working folder otherwise, so
 * `deno task relay add --file a.lic` reads the `a.lic` next to the user.
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import type { Env } from "./flags.ts";

/**
 * Resolves the paths of one command run, and remembers what the user typed
 * for each, so messages can quote the typed path rather than the resolved one.
 */
export class UserPaths {
  readonly #base: string | undefined;
  /** Resolved path -> the path as typed, for those that differ. */
  readonly #typed = new Map<string, string>();

  constructor(env: Env) {
    const base = env.INIT_CWD;
    this.#base = base === undefined || base === "" ? undefined : base;
  }

  /**
   * `path` resolved against `INIT_CWD` when it is relative and `INIT_CWD` is
   * set; else as is (an empty path too, so it fails as it would have).
   */
  resolve(path: string): string {
    if (this.#base === undefined || path === "" || isAbsolute(path)) return path;
    const resolved = resolve(this.#base, path);
    this.#typed.set(resolved, path);
    return resolved;
  }

  /**
   * `message` with every quoted path that {@link resolve} produced put back
   * as the user typed it: lower layers only ever saw the resolved path.
   */
  asTyped(message: string): string {
    let text = message;
    for (const [resolved, typed] of this.#typed) {
      text = text.replaceAll(`"${resolved}"`, `"${typed}"`);
    }
    return text;
  }
}
