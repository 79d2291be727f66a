/**
 * The log lines of lease decisions: a lease granted, extended or released at
 * debug, a refusal at warn (where Keygen Relay logs its refusals, `-vv`).
 * Licenses are named by their id; never a key or a file.
 *
 * @module
 */

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
  { node, pool, policy }: { node: string; pool: string | null; policy: LeasePolicy },
): void {
  const fields = { node, pool, strategy: policy.strategy, result: result.kind };
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
      logger.warn("claim refused: the node already leases a license", fields);
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
  { node, pool }: { node: string; pool: string | null },
): void {
  if (result.kind === "released") {
    logger.debug("lease released", { node, pool, result: result.kind, license: result.licenseId });
  } else {
    logger.warn("release refused: the node leases no license in the pool", {
      node,
      pool,
      result: result.kind,
    });
  }
}
