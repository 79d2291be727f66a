/**
 * The lease routes, `PUT`, `GET` and `DELETE` of `/v1/nodes/{fingerprint}`
 * and `/v1/users/{email}`: one handler for both kinds of holder
 * (`lib/holders.ts`), which turns lease results into status codes, bodies
 * and headers. `server/app.ts` routes to it after authentication.
 *
 * @module
 */

import { type Holder, nodeHolder, normalizeEmail, userHolder } from "../lib/holders.ts";
import {
  claim,
  type ClaimResult,
  type LeaseLicense,
  type LeasePolicy,
  lookup,
  type LookupResult,
  release,
} from "../lib/leases.ts";
import type { Logger } from "../lib/logger.ts";
import type { Store } from "../lib/storage/store.ts";
import type { Clock } from "../lib/time.ts";
import type { DenialRecorder } from "./denials.ts";
import { errorReply, type Reply } from "./errors.ts";
import { logClaim, logRelease } from "./lease_log.ts";
import type { RelayMetrics } from "./metrics.ts";
import { type SeatWaiters, waitSeconds } from "./waiters.ts";

/** The longest fingerprint accepted, in characters. */
export const MAX_FINGERPRINT_LENGTH = 256;

/** What a lease request needs of the server (a subset of `HandlerDeps` in `./app.ts`). */
export interface LeaseDeps {
  store: Store;
  config: {
    /** `--pool`: the only pool served; null serves every pool by `Relay-Pool`. */
    pool: string | null;
    policy: LeasePolicy;
    /** `--max-wait`, in seconds. */
    maxWaitSeconds?: number;
  };
  logger: Logger;
  now: Clock;
  random?: () => number;
  waiters?: SeatWaiters;
  metrics?: RelayMetrics;
}

/** One lease request. */
export interface LeaseRequest {
  request: Request;
  /** Unix seconds when it arrived. */
  now: number;
  deps: LeaseDeps;
  /** Records denied claims (`410`) in the audit log, rate-limited. */
  denials: DenialRecorder;
}

/** The node of a `/v1/nodes/` segment, or the error answer for it. */
export function nodeOf(segment: string): Holder | Reply {
  const fingerprint = decodeFingerprint(segment);
  if (fingerprint === undefined) return errorReply("invalid_fingerprint");
  if (characterCount(fingerprint) > MAX_FINGERPRINT_LENGTH) {
    return errorReply("fingerprint_too_long");
  }
  return nodeHolder(fingerprint);
}

/** The user of a `/v1/users/` segment (its email, compared in lowercase), or a 400. */
export function userOf(segment: string): Holder | Reply {
  const decoded = decodeFingerprint(segment);
  const email = decoded === undefined ? undefined : normalizeEmail(decoded);
  return email === undefined ? errorReply("invalid_email") : userHolder(email);
}

/** `PUT`, `GET` and `DELETE` of a lease, for a node or a user alike. */
export async function leaseRoute(
  { request, now, deps, denials }: LeaseRequest,
  holder: Holder,
): Promise<Reply> {
  const header = poolHeader(request.headers.get("Relay-Pool"));
  let pool = deps.config.pool;
  if (header) {
    if (pool !== null && pool !== header) return errorReply("unsupported_pool_header");
    pool = header;
  }

  const options = { pool, now, policy: deps.config.policy, random: deps.random };
  if (request.method === "PUT") {
    const wait = waitSeconds(request.url, deps.config.maxWaitSeconds ?? 0);
    if (wait === undefined) {
      return errorReply("invalid_wait", {
        detail: `use seconds or a duration of at most ${deps.config.maxWaitSeconds ?? 0}s`,
      });
    }
    let claimed = await claim(deps.store, holder, options);
    let at = now;
    if (deps.waiters && wait > 0 && isDenied(claimed)) {
      deps.logger.info("claim waiting for a seat", {
        pool: pool ?? undefined,
        wait_s: wait,
        waiting: deps.waiters.size + 1,
      });
      // Queue for a seat; each try is a claim of its own, at its own time.
      const answer = await deps.waiters.wait({
        pool,
        until: now + wait,
        signal: request.signal,
        attempt: async () => {
          at = deps.now();
          claimed = await claim(deps.store, holder, { ...options, now: at });
          return isDenied(claimed) ? undefined : claimed;
        },
      });
      claimed = answer ?? claimed;
      at = Math.max(at, deps.now());
    }
    logClaim(deps.logger, claimed, { holder, pool, policy: deps.config.policy });
    if (isDenied(claimed)) await denials.record(holder, { pool, now: at });
    deps.metrics?.claim(pool, claimed.kind);
    const reply = claimReply(claimed, { policy: deps.config.policy, pool, now: at });
    return { ...reply, pool, clock: at === now ? undefined : at };
  }
  if (request.method === "GET") {
    const found = await lookup(deps.store, holder, options);
    return { ...lookupReply(found, { pool, now }), pool };
  }
  const released = await release(deps.store, holder, options);
  logRelease(deps.logger, released, { holder, pool });
  if (released.kind !== "released") return { ...errorReply("claim_not_found"), pool };
  if (holder.kind === "user") deps.metrics?.userRelease(pool);
  else deps.metrics?.nodeRelease(pool);
  deps.waiters?.notify(pool);
  return { status: 204, body: null, pool };
}

/** A claim that found no seat: the answers a wait can turn into a lease. */
function isDenied(result: ClaimResult): boolean {
  return result.kind === "exhausted" || result.kind === "expired_only";
}

function claimReply(
  result: ClaimResult,
  { policy, pool, now }: { policy: LeasePolicy; pool: string | null; now: number },
): Reply {
  switch (result.kind) {
    case "created":
      return {
        status: 201,
        body: {
          license_file: result.licenseFile.toBase64(),
          license_key: result.licenseKey,
          expires_at: result.expiresAt,
          expires_in: policy.ttl,
        },
        headers: leaseHeaders(result.license, pool),
      };
    case "extended":
      return {
        status: 202,
        // A user's 202 carries the file and key too, as its 201 does (`grant`).
        body: result.grant === undefined
          ? { expires_at: result.expiresAt, expires_in: policy.ttl }
          : {
            license_file: result.grant.licenseFile.toBase64(),
            license_key: result.grant.licenseKey,
            expires_at: result.expiresAt,
            expires_in: policy.ttl,
          },
        headers: leaseHeaders(result.license, pool),
      };
    case "conflict":
      return errorReply("conflict");
    case "exhausted":
    case "expired_only":
      // When to ask again: the first live lease of the pool runs out then.
      return errorReply(result.kind, {
        headers: result.retryAt === undefined
          ? undefined
          : { "Retry-After": String(Math.max(1, result.retryAt - now)) },
      });
  }
}

/** `GET`: the holder's lease as a `201` gives it, `expires_in` counting down; or a 404. */
function lookupReply(
  result: LookupResult,
  { pool, now }: { pool: string | null; now: number },
): Reply {
  if (result.kind === "not_found") return errorReply("claim_not_found");
  return {
    status: 200,
    body: {
      license_file: result.licenseFile.toBase64(),
      license_key: result.licenseKey,
      expires_at: result.expiresAt,
      expires_in: result.expiresAt === null ? null : Math.max(0, result.expiresAt - now),
    },
    headers: leaseHeaders(result.license, pool),
  };
}

/** What the holder learns of its license without decrypting the file. */
function leaseHeaders(license: LeaseLicense, pool: string | null): Record<string, string> {
  const headers: Record<string, string> = { "Relay-License-Id": license.guid };
  if (pool !== null) headers["Relay-Pool"] = pool;
  if (license.fileExpiresAt !== null) {
    headers["Relay-License-Expires"] = String(license.fileExpiresAt);
  }
  return headers;
}

/**
 * A pool name that no pool has: names come from the command line, which
 * cannot carry NUL. Bytes that are not UTF-8 name this pool, so they get
 * exactly the answers an unknown pool gets.
 */
const NO_SUCH_POOL = "\u0000";

/**
 * The `Relay-Pool` value as UTF-8 text: HTTP hands header bytes over one byte per
 * character. Null when absent; {@link NO_SUCH_POOL} when not UTF-8.
 */
function poolHeader(value: string | null): string | null {
  if (value === null || !/[\u0080-\uffff]/.test(value)) return value;
  const bytes = Uint8Array.from(value, (char) => char.charCodeAt(0));
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return NO_SUCH_POOL;
  }
}

/** Characters (code points), not UTF-16 units; cheap for short strings. */
function characterCount(text: string): number {
  if (text.length <= MAX_FINGERPRINT_LENGTH) return text.length;
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/**
 * A path segment, percent-decoded; undefined for invalid UTF-8 or control
 * characters, which no fingerprint needs and logs should never carry.
 */
function decodeFingerprint(segment: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    return undefined;
  }
  // deno-lint-ignore no-control-regex
  return /[\u0000-\u001f\u007f]/.test(decoded) ? undefined : decoded;
}
