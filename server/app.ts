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
 * | `PUT`/`GET`/`DELETE /v1/users/{email}` | as for nodes, a seat held by a user (`lib/holders.ts`) |
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
 * With `--auth-token-file`, `/v1/nodes/…` and `/v1/users/…` answer 401 without a valid bearer token.
 *
 * A 410 is also recorded as `license.denied`, rate-limited (`server/denials.ts`).
 *
 * @module
 */

import { writeProblem } from "../lib/health.ts";
import type { LeasePolicy } from "../lib/leases.ts";
import type { Logger } from "../lib/logger.ts";
import type { Store } from "../lib/storage/store.ts";
import type { Clock } from "../lib/time.ts";
import type { Authenticator } from "./auth.ts";
import { createDenialRecorder, type DenialRecorder } from "./denials.ts";
import { errorKindOf, errorReply, type Reply } from "./errors.ts";
import { EXPOSITION_CONTENT_TYPE, type RelayMetrics } from "./metrics.ts";
import { leaseRoute, nodeOf, userOf } from "./lease_routes.ts";
import { createSigner, type Signer } from "./signing.ts";
import type { SeatWaiters } from "./waiters.ts";
import { statusPage } from "./ui.ts";
import { OPENAPI_PATH, openApiReply } from "./openapi.ts";

export { MAX_FINGERPRINT_LENGTH } from "./lease_routes.ts";

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
const USER_PREFIX = "/v1/users/";

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
  const prefix = [NODE_PREFIX, USER_PREFIX].find((known) => path.startsWith(known));
  if (prefix === undefined || path.length === prefix.length) return errorReply("not_found");
  // Before anything else about the request: without a token, learn nothing.
  if (deps.auth && !(await deps.auth.check(request.headers.get("Authorization")))) {
    return errorReply("unauthorized", { headers: { "WWW-Authenticate": "Bearer" } });
  }
  const segment = path.slice(prefix.length);
  if (segment.includes("/")) return errorReply("not_found");
  if (request.method !== "PUT" && request.method !== "DELETE" && request.method !== "GET") {
    return errorReply("method_not_allowed", { headers: { Allow: "GET, PUT, DELETE" } });
  }
  const holder = prefix === NODE_PREFIX ? nodeOf(segment) : userOf(segment);
  if (!("kind" in holder)) return holder;
  return await leaseRoute({ request, now, deps, denials }, holder);
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
  if (path?.startsWith(USER_PREFIX)) return "/v1/users/{email}";
  return "other";
}

/** The answer to a thrown error; anything unexpected is a logged 500. */
function failure(
  error: unknown,
  { request, path, logger }: { request: Request; path: string; logger: Logger },
): Reply {
  const kind = errorKindOf(error);
  // The database's own words say why (`connection refused`), never a secret.
  if (kind === "database_unavailable") {
    return errorReply(kind, { detail: (error as Error).message });
  }
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
