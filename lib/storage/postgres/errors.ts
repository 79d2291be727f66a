/**
 * PostgreSQL's failures (as the `postgres` package reports them) as Relay's
 * typed errors: a server that cannot be reached right now is a
 * {@link DatabaseUnavailableError} with a short reason; any other failure of
 * the database a {@link DatabaseError}. Neither names the URL or password.
 *
 * @module
 */

import { DatabaseError, DatabaseUnavailableError, RelayError } from "../../errors.ts";

/** An error of the `postgres` package or of the socket below it. */
type PgError = Error & { code?: string; errno?: string; severity?: string };

/** Socket and client codes of a server out of reach, with the reason shown. */
const CONNECTION_CODES: Readonly<Record<string, string>> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ETIMEDOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ENOTFOUND: "host not found",
  EPIPE: "connection lost",
  CONNECTION_CLOSED: "connection closed",
  CONNECTION_ENDED: "connection ended",
  CONNECTION_DESTROYED: "connection destroyed",
  CONNECT_TIMEOUT: "connection timed out",
};

/** SQLSTATEs of a server that refuses work for now, with the reason shown. */
const UNAVAILABLE_STATES: Readonly<Record<string, string>> = {
  "57P01": "server shutting down",
  "57P02": "server crashed",
  "57P03": "server starting up or in recovery",
  "53300": "too many connections",
};

/** Deadlock and serialization failures: the transaction may simply run again. */
const RETRYABLE_STATES = new Set(["40P01", "40001"]);

/** The reason a server is out of reach, if `error` says so; undefined otherwise. */
export function unavailableReason(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const { code, errno } = error as PgError;
  for (const value of [code, errno]) {
    if (value === undefined) continue;
    if (value in CONNECTION_CODES) return CONNECTION_CODES[value];
    if (value in UNAVAILABLE_STATES) return UNAVAILABLE_STATES[value];
    // Class 08: connection exceptions.
    if (/^08[0-9A-Z]{3}$/.test(value)) return "connection failure";
  }
  // Deno's socket errors carry the errno name in the message only, at times.
  const match = /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND)\b/.exec(
    error.message,
  );
  return match ? CONNECTION_CODES[match[1]] : undefined;
}

/** Whether `error` is PostgreSQL's (it has a SQLSTATE). */
function sqlState(error: unknown): string | undefined {
  if (!(error instanceof Error) || error.name !== "PostgresError") return undefined;
  return (error as PgError).code;
}

/** Whether the transaction that failed with `error` may be run again as is. */
export function isRetryable(error: unknown): boolean {
  return RETRYABLE_STATES.has(sqlState(error) ?? "");
}

/**
 * `error` as Relay's typed error: a server out of reach is a
 * {@link DatabaseUnavailableError}, a failure PostgreSQL reports a
 * {@link DatabaseError}; Relay's own errors and the caller's pass through.
 */
export function asDatabaseError(error: unknown): unknown {
  if (error instanceof RelayError) return error;
  const unavailable = unavailableReason(error);
  if (unavailable !== undefined) {
    return new DatabaseUnavailableError(unavailable, { cause: error });
  }
  if (sqlState(error) !== undefined) {
    return new DatabaseError(`PostgreSQL failed: ${(error as Error).message}`, { cause: error });
  }
  return error;
}

/**
 * Why a transaction failed in the database, in the server's words (or the
 * reason it is out of reach); null when `error` is not the database's failure
 * (an error of the caller's, or a constraint it broke: SQLSTATE class 23).
 */
export function databaseFailure(error: unknown): string | null {
  if (error instanceof DatabaseUnavailableError) return error.message;
  if (!(error instanceof DatabaseError)) return null;
  const state = sqlState(error.cause);
  if (state === undefined) return error.message;
  if (state.startsWith("23")) return null;
  return (error.cause as Error).message;
}
