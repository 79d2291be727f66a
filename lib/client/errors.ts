/**
 * The client's one error type: a {@link RelayClientError} with a code the
 * application branches on, never a message to match.
 *
 * @module
 */

/**
 * What went wrong:
 * - `unreachable`: no answer (connection refused, reset, timed out);
 * - `bad_signature`: a signing secret is set and the answer is unsigned,
 *   badly signed, signed for another request or outside the clock-skew window;
 * - `unauthorized`: `401`, the bearer token is missing or wrong;
 * - `conflict`: `409`, the seat is leased in another pool, or the server runs
 *   without heartbeats and the seat is already held;
 * - `exhausted`: `410`, no (valid) license is free;
 * - `not_found`: `404` on `GET`/`DELETE`, the seat holds no lease;
 * - `rejected`: any other answer that is not a success (`400`, `5xx`, …);
 * - `malformed_response`: a success whose body is not what the API promises;
 * - `invalid_license_file`: the license file does not verify, decrypt or
 *   parse with the vendor's public key, or has expired;
 * - `invalid_public_key`: the public key given is neither Ed25519 hex nor RSA PEM;
 * - `released`: the client was released (or is being released) and makes no more requests.
 */
export type RelayClientErrorCode =
  | "unreachable"
  | "bad_signature"
  | "unauthorized"
  | "conflict"
  | "exhausted"
  | "not_found"
  | "rejected"
  | "malformed_response"
  | "invalid_license_file"
  | "invalid_public_key"
  | "released";

/** Extra facts of a {@link RelayClientError}. */
export interface RelayClientErrorDetails {
  /** The HTTP status, when the server answered. */
  status?: number;
  /** `Retry-After` of a `410`, in seconds, when the server sent one. */
  retryAfter?: number;
  /** The underlying error (a network failure, a WebCrypto refusal). */
  cause?: unknown;
}

/** An error of the Relay client; branch on {@link RelayClientError.code}. */
export class RelayClientError extends Error {
  /** What went wrong. */
  readonly code: RelayClientErrorCode;
  /** The HTTP status, when the server answered. */
  readonly status: number | undefined;
  /** `Retry-After` of a `410`, in seconds. */
  readonly retryAfter: number | undefined;

  constructor(code: RelayClientErrorCode, message: string, details: RelayClientErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "RelayClientError";
    this.code = code;
    this.status = details.status;
    this.retryAfter = details.retryAfter;
  }
}
