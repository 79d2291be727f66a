/**
 * `relay add`: verify license files and add them to the pool, all or nothing.
 *
 * @module
 */

import { Command } from "commander";
import {
  InvalidPublicKeyError,
  UnreadableFileError,
  UsageError,
  withContext,
} from "../lib/errors.ts";
import { importPublicKey, type PublicKey } from "../lib/license_file.ts";
import { addLicenses, type LicenseInput, verifyLicenses } from "../lib/licenses.ts";
import { isLocked } from "../lib/node_lock.ts";
import type { CommandContext } from "./context.ts";
import { readSmallFile } from "./files.ts";
import { collectList, envValue, flagOption, FLAGS, flagValue } from "./flags.ts";
import { startProgress } from "./output.ts";

/** Files from this many on get a progress bar (on a terminal). */
const PROGRESS_THRESHOLD = 10;

interface AddOptions {
  file: string[];
  key?: string[];
  keyFile?: string[];
  publicKey?: string;
  pool?: string;
  seats?: string;
}

/** Builds the `add` command. */
export function addCommand(context: CommandContext): Command {
  // A node-locked build verifies with its embedded public key: its help hides --public-key.
  const locked = isLocked(context.nodeLock);
  const publicKeyOption = flagOption(FLAGS.add.publicKey);
  return new Command("add")
    .description("verify license files and add them to the pool (all or nothing)")
    .addOption(flagOption(FLAGS.add.file))
    .addOption(flagOption(FLAGS.add.key))
    .addOption(flagOption(FLAGS.add.keyFile))
    .addOption(locked ? publicKeyOption.hideHelp() : publicKeyOption)
    .addOption(flagOption(FLAGS.add.pool))
    .addOption(flagOption(FLAGS.add.seats))
    .action(async (options: AddOptions) => {
      const { io } = context;
      const publicKeyText = locked
        ? embeddedPublicKey(options, context)
        : flagValue(FLAGS.add.publicKey, options.publicKey, io.env);
      if (!publicKeyText) {
        throw new UsageError(`required option '${FLAGS.add.publicKey.flags}' not specified`);
      }
      const pool = flagValue(FLAGS.add.pool, options.pool, io.env);
      if (pool !== undefined && pool.trim() === "") {
        throw new UsageError("Pool name must not be empty");
      }
      const seats = options.seats === undefined ? undefined : seatCount(options.seats);
      if (options.file.length === 0) {
        throw new UsageError("--file needs at least one license file path");
      }
      const keys = await licenseKeys(options, context);
      if (options.file.length !== keys.list.length) {
        // The reference Relay's wording, with the counts (never the keys).
        throw new UsageError(
          `number of key and file flags must match (${options.file.length} files, ${keys.list.length} keys${keys.from})`,
        );
      }

      const publicKey = await resolvePublicKey(publicKeyText, context);
      const inputs: LicenseInput[] = [];
      for (const [i, path] of options.file.entries()) {
        // The source stays as typed: messages and logs name the file by it.
        const certificate = await readSmallFile(context.path(path), "license file");
        inputs.push({ source: path, certificate, key: keys.list[i] });
      }

      const now = context.now();
      const progress = io.stderrIsTerminal && inputs.length >= PROGRESS_THRESHOLD
        ? startProgress("Verifying", inputs.length)
        : undefined;
      let verified;
      try {
        verified = await verifyLicenses(inputs, {
          publicKey,
          now,
          seats,
          onProgress: progress?.tick,
        });
      } finally {
        progress?.stop();
      }

      const logger = context.logger("stderr");
      for (const { source, license } of verified) {
        logger.info("license file verified", {
          file: source,
          id: license.id,
          algorithm: license.algorithm,
          file_expires_at: license.fileExpiry?.toISOString() ?? null,
        });
      }
      const store = await context.openStore({ create: true });
      try {
        const added = await addLicenses(store, verified, { pool, now, seats });
        // The reference's line, with the seats of a multi-seat license after it.
        const suffix = seats === undefined || seats === 1 ? "" : ` (${seats} seats)`;
        io.stdout(
          added.map((license) =>
            `license ${
              license.renewed ? "renewed" : "added"
            } successfully: ${license.guid}${suffix}\n`
          ).join(""),
        );
      } finally {
        await store.close();
      }
    });
}

/**
 * `--seats`: a whole number from 1 (1: an ordinary license).
 *
 * @throws {UsageError} anything else.
 */
function seatCount(text: string): number {
  const seats = Number(text.trim());
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(seats) || seats < 1) {
    throw new UsageError(`--seats must be a whole number from 1, not "${text}"`);
  }
  return seats;
}

/**
 * The public key of a node-locked build: `--public-key` is refused, and its
 * env var ignored with a warning, as the build's key cannot be changed.
 */
function embeddedPublicKey(options: AddOptions, context: CommandContext): string {
  const { publicKey } = FLAGS.add;
  if (options.publicKey !== undefined) {
    throw new UsageError(
      "--public-key cannot be used: this node-locked build verifies license files with its embedded public key",
    );
  }
  const name = publicKey.env.find((name) => envValue(context.io.env, name) !== undefined);
  if (name !== undefined) {
    // Shown at every verbosity: the operator's setting is overridden.
    context.logger("stderr").warn(
      `${name} is ignored: this node-locked build verifies license files with its embedded public key`,
      {},
      { always: true },
    );
  }
  return context.nodeLock.publicKey;
}

/** Largest key file: a key is at most a few hundred bytes, so this holds thousands. */
const MAX_KEY_FILE_BYTES = 4 * 1024 * 1024;

/**
 * The license key of each file, in order: the lines of the key files
 * (`--key-file`, else `RELAY_KEY_FILE`), or the `--key` values; one of the
 * two. `from` says where they came from, for the count message. No message
 * ever quotes a key.
 *
 * @throws {UsageError} neither or both given, or a key file holds no key.
 * @throws {UnreadableFileError} a key file cannot be read.
 */
async function licenseKeys(
  options: AddOptions,
  context: CommandContext,
): Promise<{ list: string[]; from: string }> {
  const { key, keyFile } = FLAGS.add;
  const envPaths = flagValue(keyFile, undefined, context.io.env);
  const paths = options.keyFile ?? (envPaths === undefined ? undefined : collectList(envPaths));
  if (options.key !== undefined && paths !== undefined) {
    const which = options.keyFile === undefined
      ? `a key file (${keyFile.env[0]} is set)`
      : "--key-file";
    throw new UsageError(`Give the license keys with --key or ${which}, not both`);
  }
  if (options.key !== undefined) return { list: options.key, from: "" };
  if (paths === undefined) {
    throw new UsageError(`required option '${keyFile.flags}' or '${key.flags}' not specified`);
  }
  if (paths.length === 0) throw new UsageError("--key-file needs at least one key file path");
  const list: string[] = [];
  for (const path of paths) {
    const text = new TextDecoder().decode(
      await readSmallFile(context.path(path), "key file", MAX_KEY_FILE_BYTES),
    );
    // One key per line; blank lines, surrounding blanks and CRLF endings are not keys.
    const keys = text.split("\n").map((line) => line.trim()).filter((line) => line !== "");
    if (keys.length === 0) throw new UsageError(`Key file "${path}" holds no license key`);
    list.push(...keys);
  }
  return { list, from: ` in ${paths.map((path) => `"${path}"`).join(", ")}` };
}

/**
 * The public key itself (64 hex chars, or PEM text), or the path of a file
 * that holds it (resolved as the user's paths are).
 */
async function resolvePublicKey(text: string, context: CommandContext): Promise<PublicKey> {
  const trimmed = text.trim();
  if (/^[0-9a-f]{64}$/i.test(trimmed) || trimmed.includes("-----BEGIN")) {
    return await importPublicKey(trimmed);
  }
  let contents: Uint8Array;
  try {
    contents = await readSmallFile(context.path(trimmed), "public key file", 64 * 1024);
  } catch (error) {
    if (!(error instanceof UnreadableFileError)) throw error;
    throw withContext(
      new InvalidPublicKeyError(error.message, { cause: error }),
      "Invalid public key (neither 64 hex characters nor an RSA PEM key)",
    );
  }
  return await importPublicKey(new TextDecoder().decode(contents));
}
