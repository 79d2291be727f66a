/**
 * PostgreSQL URLs without the client: telling one from a SQLite path, and
 * naming one without its password. Commands that never talk to PostgreSQL
 * import only this, so they do not load the `pg` package.
 *
 * @module
 */

/** Whether `location` names a PostgreSQL database (`postgres://` or `postgresql://`). */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/**
 * `url` with its password replaced by `***`, for messages and logs; an
 * unparsable URL is named by its scheme only.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    for (const key of [...parsed.searchParams.keys()]) {
      if (key.toLowerCase() === "password") parsed.searchParams.set(key, "***");
    }
    return parsed.href;
  } catch {
    return `${url.split(":")[0]}://…`;
  }
}
