/**
 * The HTTP API: routes, and the single place where lease results and errors
 * become status codes and JSON bodies. No SQL here; no sockets either:
 * `createHandler()` returns a `(Request) => Promise<Response>` that
 * `cli/serve.ts` hands to `Deno.serve` and tests call directly.
 *
 * | request                      | result                                           |
 * |------------------------------|--------------------------------------------------|
 * | `GET /v1/health`             | 200, empty                                       |
 * | `PUT /v1/nodes/{fp}`         | 201 new lease, 202 extended, 409 conflict, 410 none free |
 * | `DELETE /v1/nodes/{fp}`      | 204 released, 404 no lease                       |
 *
 * @module
 */

import { RelayError } from "../lib/errors.ts";
import { claim, type ClaimResult, type LeasePolicy, release } from "../lib/leases.ts";
import type { Logger } from "../lib/logger.ts";
import type { Store } from "../lib/store.ts";
import { type Committer, createCommitter } from "./group_commit.ts";
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
  /** The clock, in milliseconds since the epoch. */
  now: () => number;
  /** Uniform random numbers in [0, 1), for the `rand` strategy. */
  random?: () => number;
}

/** A response before headers: status and JSON body (null: no body). */
interface Reply {
  status: number;
  body: Record<string, unknown> | null;
  headers?: Record<string, string>;
  /** The pool the request acted on, for the request log. */
  pool?: string | null;
}

const NODE_PREFIX = "/v1/nodes/";

/** Builds the request handler. */
export async function createHandler(
  deps: HandlerDeps,
): Promise<(request: Request) => Promise<Response>> {
  const signer = deps.config.signingSecret ? await createSigner(deps.config.signingSecret) : null;
  const commit = createCommitter(deps.store);

  return async function handle(request: Request): Promise<Response> {
    const started = performance.now();
    const nowMs = deps.now();
    const now = Math.floor(nowMs / 1000);
    const path = requestPath(request);
    let reply: Reply;
    try {
      reply = path === undefined
        ? { status: 400, body: { error: "invalid host header" } }
        : await route(request, path, now, deps, commit);
    } catch (error) {
      reply = errorReply(error, request, path ?? "?", deps.logger);
    }
    const response = await respond(reply, now, signer);
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
  request: Request,
  path: string,
  now: number,
  deps: HandlerDeps,
  commit: Committer,
): Promise<Reply> {
  if (path === "/v1/health") {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return methodNotAllowed("GET, HEAD");
    }
    return { status: 200, body: null };
  }
  if (!path.startsWith(NODE_PREFIX) || path.length === NODE_PREFIX.length) {
    return { status: 404, body: { error: "not found" } };
  }
  const segment = path.slice(NODE_PREFIX.length);
  if (segment.includes("/")) return { status: 404, body: { error: "not found" } };
  if (request.method !== "PUT" && request.method !== "DELETE") {
    return methodNotAllowed("PUT, DELETE");
  }

  const fingerprint = decodeFingerprint(segment);
  if (fingerprint === undefined) return { status: 400, body: { error: "invalid fingerprint" } };
  if (characterCount(fingerprint) > MAX_FINGERPRINT_LENGTH) {
    return { status: 400, body: { error: "fingerprint too long" } };
  }

  const header = poolHeader(request.headers.get("Relay-Pool"));
  let pool = deps.config.pool;
  if (header) {
    if (pool !== null && pool !== header) {
      return { status: 400, body: { error: "unsupported pool header" } };
    }
    pool = header;
  }

  const options = { pool, now, policy: deps.config.policy, random: deps.random };
  if (request.method === "PUT") {
    const claimed = await commit(() => claim(deps.store, fingerprint, options));
    return { ...claimReply(claimed, deps.config.policy), pool };
  }
  const released = await commit(() => release(deps.store, fingerprint, options));
  return released.kind === "released"
    ? { status: 204, body: null, pool }
    : { status: 404, body: { error: "claim not found" }, pool };
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
      return { status: 409, body: { error: "failed to claim license due to conflict" } };
    case "exhausted":
      return { status: 410, body: { error: "no licenses available" } };
  }
}

/** The one table from errors to responses; anything unexpected is a logged 500. */
function errorReply(error: unknown, request: Request, path: string, logger: Logger): Reply {
  if (error instanceof RelayError && error.code === "pool_not_found") {
    return { status: 400, body: { error: "invalid pool header" } };
  }
  logger.error("request failed", {
    method: request.method,
    path,
    error: error instanceof Error ? error.message : String(error),
  });
  return { status: 500, body: { error: "internal server error" } };
}

function methodNotAllowed(allow: string): Reply {
  return { status: 405, body: { error: "method not allowed" }, headers: { Allow: allow } };
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

async function respond(reply: Reply, now: number, signer: Signer | null): Promise<Response> {
  // The reference Relay's bodies: compact JSON and a newline.
  const body = reply.body === null ? "" : JSON.stringify(reply.body) + "\n";
  const headers = new Headers(reply.headers);
  if (reply.body !== null) headers.set("Content-Type", "application/json");
  headers.set("Relay-Clock", String(now));
  if (signer) headers.set("Relay-Signature", await signer.sign(now, body));
  return new Response(reply.body === null ? null : body, { status: reply.status, headers });
}
