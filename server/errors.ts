/**
 * The one table of the API's error answers: each kind of failure, its status
 * and its JSON body. Handlers name a kind; only {@link errorReply} writes the
 * body. The `error` texts are the reference Relay's, byte for byte: clients
 * match on them. Kinds the reference does not have (`expired_only`,
 * `database_unwritable`, `unauthorized`, `invalid_wait`) have texts of their own.
 *
 * @module
 */

import { type ErrorCode, RelayError } from "../lib/errors.ts";

/** Every error answer of the API: status and the exact `error` text. */
export const API_ERRORS = {
  invalid_host: { status: 400, message: "invalid host header" },
  invalid_fingerprint: { status: 400, message: "invalid fingerprint" },
  fingerprint_too_long: { status: 400, message: "fingerprint too long" },
  invalid_email: { status: 400, message: "invalid email" },
  unsupported_pool_header: { status: 400, message: "unsupported pool header" },
  invalid_pool_header: { status: 400, message: "invalid pool header" },
  unauthorized: { status: 401, message: "unauthorized" },
  invalid_wait: { status: 400, message: "invalid wait" },
  not_found: { status: 404, message: "not found" },
  claim_not_found: { status: 404, message: "claim not found" },
  method_not_allowed: { status: 405, message: "method not allowed" },
  conflict: { status: 409, message: "failed to claim license due to conflict" },
  exhausted: { status: 410, message: "no licenses available" },
  expired_only: {
    status: 410,
    message: "no valid licenses available: every free license has expired",
  },
  internal: { status: 500, message: "internal server error" },
  database_unwritable: { status: 503, message: "database not accepting writes" },
  database_unavailable: { status: 503, message: "database unavailable" },
} as const satisfies Record<string, { status: number; message: string }>;

/** One of the {@link API_ERRORS} kinds. */
export type ApiErrorKind = keyof typeof API_ERRORS;

/** Domain errors that a client's request can cause, and the answer each gets. */
const DOMAIN_ERRORS: Partial<Record<ErrorCode, ApiErrorKind>> = {
  pool_not_found: "invalid_pool_header",
  holder_conflict: "conflict",
  database_unavailable: "database_unavailable",
};

/** A response before headers: status and JSON body (null: no body). */
export interface Reply {
  status: number;
  body: Record<string, unknown> | null;
  headers?: Record<string, string>;
  /** The pool the request acted on, for the request log. */
  pool?: string | null;
  /** The server clock the answer was made at, when later than the request's arrival (a wait). */
  clock?: number;
}

/**
 * The answer for an error kind, with extra headers if any, and a detail after
 * the kind's text (`database not accepting writes: disk I/O error`).
 */
export function errorReply(
  kind: ApiErrorKind,
  extra: { headers?: Record<string, string>; detail?: string } = {},
): Reply {
  const { status, message } = API_ERRORS[kind];
  const error = extra.detail === undefined ? message : `${message}: ${extra.detail}`;
  return { status, body: { error }, headers: extra.headers };
}

/**
 * The kind of answer an error thrown while handling a request gets; null for
 * an unexpected error (a 500, which the caller logs).
 */
export function errorKindOf(error: unknown): ApiErrorKind | null {
  if (error instanceof RelayError) return DOMAIN_ERRORS[error.code] ?? null;
  return null;
}
