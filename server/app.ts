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
 * | `GET /v1/nodes/{fp}`         | 200 the current lease, unchanged; 404 no lease   |
 * | `DELETE /v1/nodes/{fp}`      | 204 released, 404 no lease                       |
 * | `GET /metrics`               | 200, Prometheus text (unless `--no-metrics`)     |
 * | `GET /ui`                    | 200, the status page (with `--ui`)               |
 * | `GET /v1/openapi.json`       | 200, the OpenAPI document (`server/openapi.yaml`) |
 *
 * `PUT …?wait=30s` waits up to that long for a seat instead of a 410
 * (`server/waiters.ts`).
 *
 * 201, 202 and 200 carry `Relay-License-Id`, `Relay-Pool` and
 * `Relay-License-Expires`; a 410 carries `Retry-After` when a lease of the
 * pool will run out.
 *
 * With `--auth-token-file`, `/v1/nodes/…` answers 401 without a valid bearer token.
 *
 * A 410 is also recorded as `license.denied`, rate-limited (`server/denials.ts`).
 *
 * @module
 */

import { writeProblem } from "../lib/health.ts";
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
import type { Authenticator } from "./auth.ts";
import { createDenialRecorder, type DenialRecorder } from "./denials.ts";
import { errorKindOf, errorReply, type Reply } from "./errors.ts";
import { EXPOSITION_CONTENT_TYPE, type RelayMetrics } from "./metrics.ts";
import { logClaim, logRelease } from "./lease_log.ts";
import { createSigner, type Signer } from "./signing.ts";
import { type SeatWaiters, waitSeconds } from "./waiters.ts";
import { statusPage } from "./ui.ts";
import { OPENAPI_PATH, openApiReply } from "./openapi.ts";

/** The longest fingerprint accepted, in characters. */
export const MAX_FINGERPRINT_LENGTH = 256;

/** What the API serves. */
export interface AppConfig {
  /** `--pool`: the only pool served; null serves every pool by `Relay-Pool`. */
  pool: string | null;
  policy: LeasePolicy;
  /** `--signing-secret`; null: responses are not signed. */
  signingSecret: string | null;
  /** `--max-wait`: the longest `?wait=` a claim may ask for, in seconds. */
  maxWaitSeconds?: number;
  /** Serve `GET /metrics` (needs {@link HandlerDeps.metrics}); default false. */
  metrics?: boolean;
  /** Serve the status page, `GET /ui` (`--ui`); default false. */
  ui?: boolean;
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
  /** `--auth-token-file`: the lease routes need a bearer token; absent: open. */
  auth?: Authenticator | null;
  /** Claims waiting for a seat (`?wait=`); absent: `wait` is ignored and a claim answers at once. */
  waiters?: SeatWaiters;
  /** Where requests, claims and releases are counted; none: not counted. */
  metrics?: RelayMetrics;
}

/** A reply with a body that is not JSON: the metrics, the status page. */
type TextReply = Reply & { text?: { body: string; contentType: string } };

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
  /** Records denied claims (`410`) in the audit log, rate-limited. */
  denials: DenialRecorder;
}

const NODE_PREFIX = "/v1/nodes/";

/** Builds the request handler. */
export async function createHandler(
  deps: HandlerDeps,
): Promise<(request: Request) => Promise<Response>> {
  const signer = deps.config.signingSecret ? await createSigner(deps.config.signingSecret) : null;
  const denials = createDenialRecorder({ store: deps.store, logger: deps.logger });
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
    let reply: TextReply;
    try {
      reply = path === undefined
        ? errorReply("invalid_host")
        : await route({ request, path, now, deps, writeProblem: probeWrites, denials });
    } catch (error) {
      reply = failure(error, { request, path: path ?? "?", logger: deps.logger });
    }
    const response = await respond(reply, {
      now: reply.clock ?? now,
      signer,
      request: { method: request.method, path: path ?? "" },
    });
    deps.logger.info("request", {
      method: request.method,
      path: path ?? "?",
      status: reply.status,
      duration_ms: Math.round((performance.now() - started) * 100) / 100,
      pool: reply.pool ?? undefined,
    });
    deps.metrics?.request(
      routePattern(path),
      reply.status,
      (performance.now() - started) / 1000,
    );
    return response;
  };
}

async function route(
  { request, path, now, deps, writeProblem, denials }: RouteContext,
): Promise<TextReply> {
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
  if (path === OPENAPI_PATH) return openApiReply(request.method);
  if (path === "/metrics" || path === "/ui") {
    return await pageRoute({ request, path, now, deps, writeProblem, denials }) ??
      errorReply("not_found");
  }
  if (!path.startsWith(NODE_PREFIX) || path.length === NODE_PREFIX.length) {
    return errorReply("not_found");
  }
  // Before anything else about the request: without a token, learn nothing.
  if (deps.auth && !(await deps.auth.check(request.headers.get("Authorization")))) {
    return errorReply("unauthorized", { headers: { "WWW-Authenticate": "Bearer" } });
  }
  const segment = path.slice(NODE_PREFIX.length);
  if (segment.includes("/")) return errorReply("not_found");
  if (request.method !== "PUT" && request.method !== "DELETE" && request.method !== "GET") {
    return errorReply("method_not_allowed", { headers: { Allow: "GET, PUT, DELETE" } });
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
    const wait = waitSeconds(request.url, deps.config.maxWaitSeconds ?? 0);
    if (wait === undefined) {
      return errorReply("invalid_wait", {
        detail: `use seconds or a duration of at most ${deps.config.maxWaitSeconds ?? 0}s`,
      });
    }
    let claimed = await claim(deps.store, fingerprint, options);
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
          claimed = await claim(deps.store, fingerprint, { ...options, now: at });
          return isDenied(claimed) ? undefined : claimed;
        },
      });
      claimed = answer ?? claimed;
      at = Math.max(at, deps.now());
    }
    logClaim(deps.logger, claimed, { node: fingerprint, pool, policy: deps.config.policy });
    if (isDenied(claimed)) await denials.record(fingerprint, { pool, now: at });
    deps.metrics?.claim(pool, claimed.kind);
    const reply = claimReply(claimed, { policy: deps.config.policy, pool, now: at });
    return { ...reply, pool, clock: at === now ? undefined : at };
  }
  if (request.method === "GET") {
    const found = await lookup(deps.store, fingerprint, options);
    return { ...lookupReply(found, { pool, now }), pool };
  }
  const released = await release(deps.store, fingerprint, options);
  logRelease(deps.logger, released, { node: fingerprint, pool });
  if (released.kind !== "released") return { ...errorReply("claim_not_found"), pool };
  deps.metrics?.nodeRelease(pool);
  deps.waiters?.notify(pool);
  return { status: 204, body: null, pool };
}

/** A claim that found no seat: the answers a wait can turn into a lease. */
function isDenied(result: ClaimResult): boolean {
  return result.kind === "exhausted" || result.kind === "expired_only";
}

/**
 * `GET /metrics` and `GET /ui`, when they are on; undefined when off (then
 * they answer as an unknown path does).
 */
async function pageRoute(
  { request, path, now, deps }: RouteContext,
): Promise<TextReply | undefined> {
  const metrics = deps.config.metrics ? deps.metrics : undefined;
  const served = (path === "/metrics" && metrics) || (path === "/ui" && deps.config.ui);
  if (!served) return undefined;
  if (request.method !== "GET" && request.method !== "HEAD") {
    return errorReply("method_not_allowed", { headers: { Allow: "GET, HEAD" } });
  }
  if (path === "/metrics") {
    const body = await metrics!.scrape();
    return { status: 200, body: null, text: { body, contentType: EXPOSITION_CONTENT_TYPE } };
  }
  const page = await statusPage({ store: deps.store, now, metrics: deps.metrics });
  return {
    status: 200,
    body: null,
    headers: page.headers,
    text: { body: page.html, contentType: "text/html; charset=utf-8" },
  };
}

/**
 * The route of a path as metrics label it: a pattern, never a fingerprint,
 * and `other` for every unknown path, so that clients cannot add series.
 */
function routePattern(path: string | undefined): string {
  if (
    path === "/v1/health" || path === "/metrics" || path === "/ui" || path === "/v1/openapi.json"
  ) {
    return path;
  }
  if (path?.startsWith(NODE_PREFIX)) return "/v1/nodes/{fingerprint}";
  return "other";
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
        body: { expires_at: result.expiresAt, expires_in: policy.ttl },
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
  reply: TextReply,
  { now, signer, request }: {
    now: number;
    signer: Signer | null;
    /** What `v2` binds the answer to; path is empty when the Host header was refused. */
    request: { method: string; path: string };
  },
): Promise<Response> {
  // The reference Relay's bodies: compact JSON and a newline.
  const body = reply.text?.body ?? (reply.body === null ? "" : JSON.stringify(reply.body) + "\n");
  const headers = new Headers(reply.headers);
  if (reply.text) headers.set("Content-Type", reply.text.contentType);
  else if (reply.body !== null) headers.set("Content-Type", "application/json");
  headers.set("Relay-Clock", String(now));
  if (signer) {
    headers.set(
      "Relay-Signature",
      await signer.sign(now, body, { ...request, status: reply.status }),
    );
  }
  const empty = reply.text === undefined && reply.body === null;
  return new Response(empty ? null : body, { status: reply.status, headers });
}
