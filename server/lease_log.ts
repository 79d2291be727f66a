/**
 * The log lines of lease decisions: a lease granted, extended or released at
 * debug, a refusal at warn (where Keygen Relay logs its refusals, `-vv`).
 * Licenses are named by their id; never a key or a file.
 *
 * @module
 */

import { type Holder, holderName } from "../lib/holders.ts";
import type { ClaimResult, LeasePolicy, ReleaseResult } from "../lib/leases.ts";
import type { Logger } from "../lib/logger.ts";

/**
 * The decision of a claim, one line: a lease granted or extended at debug,
 * a refusal at warn, where Keygen Relay logs its refusals (`-vv`). Names the
 * license by its id; never its key or file.
 */
export function logClaim(
  logger: Logger,
  result: ClaimResult,
  { holder, pool, policy }: { holder: Holder; pool: string | null; policy: LeasePolicy },
): void {
  const fields = { ...holderField(holder), pool, strategy: policy.strategy, result: result.kind };
  switch (result.kind) {
    case "created":
    case "extended":
      logger.debug(result.kind === "created" ? "lease granted" : "lease extended", {
        ...fields,
        license: result.license.guid,
        // As the response says; without heartbeats the lease is stored without one.
        expires_at: result.expiresAt,
        heartbeats: policy.heartbeats,
      });
      return;
    case "conflict":
      logger.warn(`claim refused: the ${holder.kind} already leases a license`, fields);
      return;
    case "exhausted":
      logger.warn("claim refused: no license available in the pool", fields);
      return;
    case "expired_only":
      logger.warn("claim refused: every free license file has expired", fields);
      return;
  }
}

/** The outcome of a release, as {@link logClaim} logs a claim's. */
export function logRelease(
  logger: Logger,
  result: ReleaseResult,
  { holder, pool }: { holder: Holder; pool: string | null },
): void {
  const named = holderField(holder);
  if (result.kind === "released") {
    logger.debug("lease released", {
      ...named,
      pool,
      result: result.kind,
      license: result.licenseId,
    });
  } else {
    logger.warn(`release refused: the ${holder.kind} leases no license in the pool`, {
      ...named,
      pool,
      result: result.kind,
    });
  }
}

/** The log field that names the holder: `node` (its fingerprint) or `user` (the email). */
function holderField(holder: Holder): { node: string } | { user: string } {
  return holder.kind === "user" ? { user: holderName(holder) } : { node: holder.key };
}
