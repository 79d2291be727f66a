/**
 * The database the user named with `--database` (or `RELAY_DATABASE`), and
 * for `relay migrate` with `--from`/`--to`: a SQLite path (resolved as the
 * user's paths are) or a `postgres://` URL (kept as given), its name for
 * messages and logs (a URL with its password replaced by `***`), and the
 * password of a PostgreSQL database.
 *
 * The password comes from the URL, else the first line of
 * `--database-password-file`, else `PGPASSWORD`: never from a flag of its
 * own, so it stays out of the process list.
 *
 * @module
 */

import type { PasswordSource } from "../lib/config.ts";
import { UsageError } from "../lib/errors.ts";
import { isPostgresUrl, redactUrl } from "../lib/storage/postgres/url.ts";
import { readSmallFile } from "./files.ts";
import { type Env, envValue, FLAGS, flagValue, PASSWORD_ENV } from "./flags.ts";
import type { UserPaths } from "./paths.ts";

export { isPostgresUrl };

/**
 * The location `typed` names: a PostgreSQL URL as is, SQLite's in-memory
 * `:memory:` as is, a path resolved by `paths`.
 */
export function databaseLocation(typed: string, paths: Pick<UserPaths, "resolve">): string {
  if (isPostgresUrl(typed) || typed === ":memory:") return typed;
  return paths.resolve(typed);
}

/** How a database is named in output, messages and logs: a URL without its password. */
export function databaseName(location: string): string {
  return isPostgresUrl(location) ? redactUrl(location) : location;
}

/**
 * Where the password comes from when a URL holds none: the file of
 * `--database-password-file` (or its env var), else `PGPASSWORD`; null when
 * neither is set.
 *
 * @throws {UsageError} the file's path is given but empty.
 */
export function passwordSource(
  given: string | undefined,
  options: { env: Env; paths: UserPaths },
): PasswordSource | null {
  const file = flagValue(FLAGS.global.databasePasswordFile, given, options.env);
  if (given !== undefined && given.trim() === "") {
    throw new UsageError("--database-password-file needs a file path");
  }
  if (file !== undefined) return { kind: "file", path: options.paths.resolve(file), typed: file };
  const password = envValue(options.env, PASSWORD_ENV);
  return password === undefined ? null : { kind: "env", password };
}

/**
 * The password to connect to `location` with: undefined for a SQLite
 * database or a URL that holds its own password (the URL wins); else the
 * first line of the password file (its line break left out), else
 * `PGPASSWORD`'s value, else undefined (the server may not ask for one).
 *
 * @throws {UnreadableFileError} the password file is missing, unreadable or empty.
 * @throws {UsageError} its first line is empty.
 */
export async function databasePassword(
  location: string,
  source: PasswordSource | null,
): Promise<string | undefined> {
  if (!isPostgresUrl(location) || source === null || urlHasPassword(location)) return undefined;
  if (source.kind === "env") return source.password;
  const text = new TextDecoder().decode(
    await readSmallFile(source.path, "database password file", 64 * 1024),
  );
  const password = text.split(/\r?\n/)[0];
  if (password === "") {
    throw new UsageError(`Database password file "${source.typed}" has an empty first line`);
  }
  return password;
}

/**
 * The secrets of `location` that must never be printed: the URL itself (its
 * password included) and the password, as written and percent-decoded.
 */
export function urlSecrets(location: string): string[] {
  if (!isPostgresUrl(location)) return [];
  try {
    const url = new URL(location);
    const passwords = [
      url.password,
      ...url.searchParams.entries()
        .filter(([key]) => key.toLowerCase() === "password").map(([, value]) => value),
    ];
    return [location, ...passwords.flatMap((password) => [password, safeDecode(password)])]
      .filter((secret) => secret !== "");
  } catch {
    // Unparsable: the whole text is the secret.
    return [location];
  }
}

/** Whether a PostgreSQL URL holds a password (in its user part or as `?password=`). */
function urlHasPassword(location: string): boolean {
  try {
    const url = new URL(location);
    return url.password !== "" ||
      [...url.searchParams.keys()].some((key) => key.toLowerCase() === "password");
  } catch {
    return false;
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
