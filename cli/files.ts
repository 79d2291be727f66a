/**
 * Reading operator-supplied files (license files, public keys) with errors
 * that say what is wrong with the path.
 *
 * @module
 */

import { UnreadableFileError } from "../lib/errors.ts";

/** Largest file `readSmallFile` accepts: license files are a few kilobytes. */
export const MAX_FILE_BYTES = 4 * 1024 * 1024;

/**
 * Reads a small, non-empty regular file.
 *
 * @throws {UnreadableFileError} missing, a directory, unreadable, empty, or
 *   larger than `maxBytes`.
 */
export async function readSmallFile(
  path: string,
  what: string,
  maxBytes = MAX_FILE_BYTES,
): Promise<Uint8Array> {
  const fail = (problem: string, cause?: unknown) =>
    new UnreadableFileError(`Cannot read ${what} "${path}": ${problem}`, { cause });
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    throw fail(describe(error), error);
  }
  if (info.isDirectory) throw fail("it is a directory");
  if (!info.isFile) throw fail("it is not a regular file");
  if (info.size > maxBytes) {
    throw fail(`it is ${info.size} bytes, larger than the ${maxBytes} a ${what} can be`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    throw fail(describe(error), error);
  }
  if (bytes.length === 0) throw fail("it is empty");
  return bytes;
}

function describe(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.IsADirectory) return "it is a directory";
  return error instanceof Error ? error.message : String(error);
}
