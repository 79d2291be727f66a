/**
 * The secrets of one run that must never reach output or logs: database
 * URLs with their passwords, and passwords read from a file or the
 * environment. The layers below name a database by its redacted URL; this is
 * the last line of defence, applied to every error message the CLI prints.
 *
 * @module
 */

import { redactUrl } from "../lib/storage/postgres/url.ts";
import { isPostgresUrl, urlSecrets } from "./database.ts";

/**
 * Secrets shorter than this are not masked inside other text: masking every
 * `ab` of a message would make it unreadable and a two-letter password is no
 * secret to hide.
 */
const MIN_MASKED = 4;

/** The secrets seen so far in this run, and the masking of them in a text. */
export class Secrets {
  readonly #urls = new Set<string>();
  readonly #values = new Set<string>();

  /** Remembers a database location: a URL's password is a secret, and the URL shows redacted. */
  addDatabase(location: string): void {
    if (!isPostgresUrl(location)) return;
    this.#urls.add(location);
    for (const secret of urlSecrets(location).slice(1)) this.add(secret);
  }

  /** Remembers a password. */
  add(secret: string | undefined): void {
    if (secret !== undefined && secret.length >= MIN_MASKED) this.#values.add(secret);
  }

  /** `text` with every known URL redacted and every known password replaced by `***`. */
  mask(text: string): string {
    let masked = text;
    // Longest first, so a URL is redacted whole before its password is masked.
    for (const url of [...this.#urls].sort((a, b) => b.length - a.length)) {
      masked = masked.replaceAll(url, redactUrl(url));
    }
    for (const secret of [...this.#values].sort((a, b) => b.length - a.length)) {
      masked = masked.replaceAll(secret, "***");
    }
    return masked;
  }
}
