/**
 * Typed errors of the Relay domain.
 *
 * Every failure that an operator or a client can cause is a {@link RelayError}
 * with a stable {@link ErrorCode}. The CLI maps codes to exit codes and
 * messages in one place (`cli/errors.ts`); the server maps them to HTTP status
 * and JSON bodies in one place (`server/`). Tests match codes, never messages.
 *
 * @module
 */

/** Stable machine-readable codes for every {@link RelayError}. */
export type ErrorCode =
  | "usage"
  | "license_file_malformed"
  | "license_file_not_genuine"
  | "license_key_wrong"
  | "license_file_expired"
  | "license_file_issued_in_future"
  | "license_file_algorithm_unsupported"
  | "public_key_invalid"
  | "license_file_unreadable"
  | "license_exists"
  | "license_not_found"
  | "license_leased"
  | "pool_not_found"
  | "node_not_found"
  | "user_not_found"
  | "holder_conflict"
  | "not_leased"
  | "database_unusable"
  | "database_too_new"
  | "database_unavailable"
  | "listen_failed"
  | "backup_failed"
  | "checks_failed"
  | "node_lock_refused"
  | "seat_limit";

/** Base class of every expected failure; `code` says which one. */
export class RelayError extends Error {
  /** Stable code that callers branch on. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Bad command-line usage: an unknown flag, a missing value, a bad duration. */
export class UsageError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("usage", message, options);
  }
}

/** The text is not a Keygen license file certificate (framing, base64 or JSON). */
export class MalformedLicenseFileError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("license_file_malformed", message, options);
  }
}

/** The signature does not verify: the file was altered, or the public key is not the issuer's. */
export class LicenseFileNotGenuineError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("license_file_not_genuine", message, options);
  }
}

/** The license key does not decrypt the file. */
export class WrongLicenseKeyError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("license_key_wrong", message, options);
  }
}

/** The file's `meta.expiry` has passed (and it has a `ttl`). */
export class LicenseFileExpiredError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("license_file_expired", message, options);
  }
}

/** The file's `meta.issued` lies further in the future than the allowed clock drift. */
export class LicenseFileIssuedInFutureError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("license_file_issued_in_future", message, options);
  }
}

/** The certificate's `alg` is not one that Relay can verify or decrypt. */
export class UnsupportedAlgorithmError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("license_file_algorithm_unsupported", message, options);
  }
}

/** The public key is neither 64 hex characters (Ed25519) nor an RSA PEM key. */
export class InvalidPublicKeyError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("public_key_invalid", message, options);
  }
}

/** A license file (or public key file) cannot be read: missing, a directory, empty, too large. */
export class UnreadableFileError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("license_file_unreadable", message, options);
  }
}

/** The license (same id, key or file) is already stored. */
export class LicenseExistsError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("license_exists", message, options);
  }
}

/**
 * `relay add --seats N` asks for more seats than the license file allows
 * (its maxMachines or maxUsers), or the file states no limit.
 */
export class SeatLimitError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("seat_limit", message, options);
  }
}

/** No license has the given id. */
export class LicenseNotFoundError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("license_not_found", message, options);
  }
}

/** The license is leased by a node right now and the operation needs `--force`. */
export class LicenseLeasedError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("license_leased", message, options);
  }
}

/** No pool has the given name. */
export class PoolNotFoundError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("pool_not_found", message, options);
  }
}

/** No node has the given fingerprint. */
export class NodeNotFoundError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("node_not_found", message, options);
  }
}

/** No user has the given email. */
export class UserNotFoundError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("user_not_found", message, options);
  }
}

/**
 * A lease holder's key is stored for a holder of another kind (a node row
 * where a user's key was expected); `lib/holders.ts` makes this impossible
 * for keys written by Relay, so the claim is refused rather than mixed up.
 */
export class HolderConflictError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("holder_conflict", message, options);
  }
}

/** The license or node holds no lease (in the pool given) to act on. */
export class NotLeasedError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("not_leased", message, options);
  }
}

/** The database cannot be opened or used: not a database, corrupt, unwritable, unknown schema. */
export class DatabaseError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("database_unusable", message, options);
  }
}

/**
 * The database server cannot be reached right now (PostgreSQL down, failing
 * over, refusing connections, or a connection lost mid-transaction): the
 * transaction did not commit. Transient: the same call may succeed once the
 * server is back, and the store reconnects by itself.
 */
export class DatabaseUnavailableError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("database_unavailable", message, options);
  }
}

/** The database was written by a newer Relay whose schema this one does not know. */
export class DatabaseTooNewError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("database_too_new", message, options);
  }
}

/** The server cannot listen on the address and port it was given. */
export class ListenError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("listen_failed", message, options);
  }
}

/**
 * A backup cannot be written: the target exists (and `--force` was not
 * given), its folder is missing, the disk refused the copy, or the copy
 * failed its check.
 */
export class BackupError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("backup_failed", message, options);
  }
}

/** `relay doctor` found something that needs action (its report says what). */
export class ChecksFailedError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("checks_failed", message, options);
  }
}

/**
 * A node-locked Relay refuses to run on this host: its machine file is
 * missing, not genuine, expired, or for another machine, or this host does
 * not match what the build is locked to.
 */
export class NodeLockError extends RelayError {
  constructor(message: string, options?: ErrorOptions) {
    super("node_lock_refused", message, options);
  }
}

/**
 * Prefixes an error's message with what it concerns (`Cannot add "a.lic"`)
 * and returns the same error, so its class and code are kept.
 */
export function withContext<E extends Error>(error: E, context: string): E {
  const message = error.message;
  error.message = `${context}: ${message.charAt(0).toLowerCase()}${message.slice(1)}`;
  return error;
}
