/**
 * The HTTP API: routes, and the single place where lease results and errors
 * become status codes and JSON bodies. No SQL here; no sockets either:
 * `createHandler()` returns a `(Request) => Promise<Response>` that
 * `cli/serve.ts` hands to `Deno.serve` and tests call directly.
 *
 * | request                      | result                                           |
 * |------------------------------|--------------------------------------------------|
 * | `GET /v1/health`             | 200, empty; 503 the database takes no writes     |
 * | `PUT /v1/nodes/{fp}`         | 201 new lease, 202 extended, 409 conflict, 410 none (valid) free |
 * | `DELETE /v1/nodes/{fp}`      | 204 released, 404 no lease                       |
 *
 * @module
 */

import { writeProblem } from "../lib/health.ts";
import {
  claim,
  type ClaimResult,
  type LeasePolicy,
  release,
  type ReleaseResult,
} from "../lib/leases.ts";
import type { Logger } from "../lib/logger.ts";
import type { Store } from "../lib/storage/store.ts";
import type { Clock } from "../lib/time.ts";
import { errorKindOf, errorReply, type Reply } from "./errors.ts";
import { createSigner, type Signer } from "./signing.ts";

/** The longest fingerprint accepted, in characters. */
export const MAX_FINGERPRINT_LENGTH = 256;

/** What the API serves. */
export interface AppConfig {
  /** `--pool`: the only pool served; null serves every pool by `Relay-Pool`. */
  pool: string | null;
  policy: LeasePolicy;
  /** `--signing-secret`; null: responses are not signed. */
  signingSecret: string | null;
}

/** What the handler is built from. */
export interface HandlerDeps {
  store: Store;
  config: AppConfig;
  logger: Logger;
  /** The clock, in unix seconds. */
  now: Clock;
  /** Uniform random numbers in [0, 1), for the `rand` strategy. */
  random?: () => number;
}

/** One request as the routes see it. */
interface RouteContext {
  request: Request;
  /** The request line's path (see {@link requestPath}). */
  path: string;
  /** Unix seconds when the request arrived. */
  now: number;
  deps: HandlerDeps;
  /** Why the database takes no writes right now; null: it does. */
  writeProblem: () => Promise<string | null>;
}

const NODE_PREFIX = "/v1/nodes/";

/** Builds the request handler. */
export async function createHandler(
  deps: HandlerDeps,
): Promise<(request: Request) => Promise<Response>> {
  const signer = deps.config.signingSecret ? await createSigner(deps.config.signingSecret) : null;
  let probe: Promise<string | null> | null = null;
  let lastProblem: string | null = null;
  /** One probe at a time: health checks that arrive during one share it. */
  function probeWrites(): Promise<string | null> {
    probe ??= writeProblem(deps.store, deps.now()).then((problem) => {
      // Logged when it changes, not on every check.
      if (problem !== null && problem !== lastProblem) {
        deps.logger.error("database not accepting writes", { reason: problem });
      } else if (problem === null && lastProblem !== null) {
        deps.logger.notice("database accepting writes again");
      }
      lastProblem = problem;
      return problem;
    }).finally(() => (probe = null));
    return probe;
  }

  return async function handle(request: Request): Promise<Response> {
    const started = performance.now();
    const now = deps.now();
    const path = requestPath(request);
    let reply: Reply;
    try {
      reply = path === undefined
        ? errorReply("invalid_host")
        : await route({ request, path, now, deps, writeProblem: probeWrites });
    } catch (error) {
      reply = failure(error, { request, path: path ?? "?", logger: deps.logger });
    }
    const response = await respond(reply, { now, signer });
    deps.logger.info("request", {
      method: request.method,
      path: path ?? "?",
      status: reply.status,
      duration_ms: Math.round((performance.now() - started) * 100) / 100,
      pool: reply.pool ?? undefined,
    });
    return response;
  };
}

async function route(
  { request, path, now, deps, writeProblem }: RouteContext,
): Promise<Reply> {
  if (path === "/v1/health") {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return errorReply("method_not_allowed", { headers: { Allow: "GET, HEAD" } });
    }
    // Healthy means able to lease: a database that takes no writes answers
    // every claim with a 500, so a load balancer should look elsewhere.
    const problem = await writeProblem();
    return problem === null
      ? { status: 200, body: null }
      : errorReply("database_unwritable", { detail: problem });
  }
  if (!path.startsWith(NODE_PREFIX) || path.length === NODE_PREFIX.length) {
    return errorReply("not_found");
  }
  const segment = path.slice(NODE_PREFIX.length);
  if (segment.includes("/")) return errorReply("not_found");
  if (request.method !== "PUT" && request.method !== "DELETE") {
    return errorReply("method_not_allowed", { headers: { Allow: "PUT, DELETE" } });
  }

  const fingerprint = decodeFingerprint(segment);
  if (fingerprint === undefined) return errorReply("invalid_fingerprint");
  if (characterCount(fingerprint) > MAX_FINGERPRINT_LENGTH) {
    return errorReply("fingerprint_too_long");
  }

  const header = poolHeader(request.headers.get("Relay-Pool"));
  let pool = deps.config.pool;
  if (header) {
    if (pool !== null && pool !== header) return errorReply("unsupported_pool_header");
    pool = header;
  }

  const options = { pool, now, policy: deps.config.policy, random: deps.random };
  if (request.method === "PUT") {
    const claimed = await claim(deps.store, fingerprint, options);
    logClaim(deps.logger, claimed, { node: fingerprint, pool, policy: deps.config.policy });
    return { ...claimReply(claimed, deps.config.policy), pool };
  }
  const released = await release(deps.store, fingerprint, options);
  logRelease(deps.logger, released, { node: fingerprint, pool });
  return released.kind === "released"
    ? { status: 204, body: null, pool }
    : { ...errorReply("claim_not_found"), pool };
}

/**
 * The decision of a claim, one line: a lease granted or extended at debug,
 * a refusal at warn, where Keygen Relay logs its refusals (`-vv`). Names the
 * license by its id; never its key or file.
 */
function logClaim(
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
        license: result.licenseId,
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
function logRelease(
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

function claimReply(result: ClaimResult, policy: LeasePolicy): Reply {
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
      };
    case "extended":
      return { status: 202, body: { expires_at: result.expiresAt, expires_in: policy.ttl } };
    case "conflict":
      return errorReply("conflict");
    case "exhausted":
      return errorReply("exhausted");
    case "expired_only":
      return errorReply("expired_only");
  }
}

/** The answer to a thrown error; anything unexpected is a logged 500. */
function failure(
  error: unknown,
  { request, path, logger }: { request: Request; path: string; logger: Logger },
): Reply {
  const kind = errorKindOf(error);
  if (kind !== null) return errorReply(kind);
  logger.error("request failed", {
    method: request.method,
    path,
    error: error instanceof Error ? error.message : String(error),
  });
  return errorReply("internal");
}

/**
 * The percent-encoded path of the request line, without query or fragment.
 * Deno builds `request.url` from the Host header, which a client controls, so
 * the path is cut after the exact Host value before it is parsed (a Host like
 * `relay/v1/nodes/x?` must not change the route). Undefined when the Host
 * header holds characters no host can have.
 */
function requestPath(request: Request): string | undefined {
  const url = request.url;
  const host = request.headers.get("host");
  if (
    host !== null && !/^[A-Za-z0-9._~\-]*(:\d{0,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{0,5})?$/.test(host)
  ) {
    return undefined;
  }
  const authority = url.indexOf("://") + 3;
  const start = host && url.startsWith(host, authority)
    ? authority + host.length
    : url.indexOf("/", authority);
  if (start < authority) return "/";
  // Resolve the path alone against a fixed origin: dot segments and
  // backslashes are normalised as before, the Host plays no part.
  return new URL(url.slice(start), "http://relay.invalid").pathname;
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

async function respond(
  reply: Reply,
  { now, signer }: { now: number; signer: Signer | null },
): Promise<Response> {
  // The reference Relay's bodies: compact JSON and a newline.
  const body = reply.body === null ? "" : JSON.stringify(reply.body) + "\n";
  const headers = new Headers(reply.headers);
  if (reply.body !== null) headers.set("Content-Type", "application/json");
  headers.set("Relay-Clock", String(now));
  if (signer) headers.set("Relay-Signature", await signer.sign(now, body));
  return new Response(reply.body === null ? null : body, { status: reply.status, headers });
}
