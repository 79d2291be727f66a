/**
 * The three lease requests (`PUT`, `GET`, `DELETE` on `/v1/nodes/{fp}` or
 * `/v1/users/{email}`), each one HTTP exchange: the bearer token and
 * `Relay-Pool` go out, the answer's signature is checked before anything in
 * it is believed, and the status becomes a result or a
 * {@link RelayClientError}.
 *
 * @module
 */

import type { ClientClock } from "./clock.ts";
import { RelayClientError } from "./errors.ts";
import { signatureProblem } from "./signature.ts";

/** How the API is reached; built once by the client from its options. */
export interface ApiConfig {
  /** The server's base URL, e.g. `http://relay:6349`. */
  url: string;
  /** `/v1/nodes/` or `/v1/users/`. */
  prefix: "/v1/nodes/" | "/v1/users/";
  /** The node's fingerprint or the user's email. */
  id: string;
  pool: string | null;
  token: string | null;
  /** Signature checks; null: answers are not checked. */
  signature: { key: CryptoKey; toleranceSeconds: number; allowV1: boolean } | null;
  clock: ClientClock;
  fetch: typeof fetch;
  /** How long a request may take before it counts as unreachable, ms (plus any wait). */
  timeoutMs: number;
}

/** A license handed out: `201` of a claim, or `200` of a `GET`. */
export interface Grant {
  kind: "granted";
  /** The license file as the API sends it: base64 of the certificate text. */
  licenseFile: string;
  licenseKey: string;
  /** The lease's end, server's unix seconds; null without heartbeats. */
  expiresAt: number | null;
  /** Seconds from the answer to {@link expiresAt}; null without heartbeats. */
  expiresIn: number | null;
  headers: LeaseHeaders;
}

/** A lease extended: `202`. */
export interface Extension {
  kind: "extended";
  expiresAt: number | null;
  expiresIn: number | null;
  headers: LeaseHeaders;
  /** The file and key, when the `202` carries them (a user's seat does); else null. */
  grant: Grant | null;
}

/** What an answer says about the license beyond its body. */
export interface LeaseHeaders {
  /** `Relay-License-Id`. */
  licenseId: string | null;
  /** `Relay-License-Expires`: the file's `meta.expiry`, unix seconds. */
  licenseExpires: number | null;
  /** `Relay-Pool`. */
  pool: string | null;
  /** `Relay-Clock`: the server's time of the answer, unix seconds. */
  clock: number | null;
  /** The client's clock when the answer arrived, ms. */
  receivedAt: number;
  /** The client's clock when the request was sent, ms. */
  sentAt: number;
}

/** `PUT`: claims a seat or heartbeats the one held. `wait` in seconds (claims only). */
export async function put(config: ApiConfig, wait?: number): Promise<Grant | Extension> {
  const answer = await exchange(config, "PUT", wait);
  if (answer.status === 201) return grant(answer);
  if (answer.status === 202) {
    const body = object(answer);
    return {
      kind: "extended",
      expiresAt: seconds(body.expires_at, answer),
      expiresIn: seconds(body.expires_in, answer),
      headers: answer.headers,
      grant: typeof body.license_file === "string" && typeof body.license_key === "string"
        ? grant(answer)
        : null,
    };
  }
  throw failure(answer);
}

/** `GET`: the lease held, unchanged (the way to fetch a renewed file). */
export async function get(config: ApiConfig): Promise<Grant> {
  const answer = await exchange(config, "GET");
  if (answer.status === 200) return grant(answer);
  throw failure(answer);
}

/** `DELETE`: releases the seat. A `404` (nothing held) counts as released. */
export async function del(config: ApiConfig): Promise<void> {
  const answer = await exchange(config, "DELETE");
  if (answer.status !== 204 && answer.status !== 404) throw failure(answer);
}

interface Answer {
  status: number;
  body: string;
  headers: LeaseHeaders;
  retryAfter: number | undefined;
}

async function exchange(config: ApiConfig, method: string, wait?: number): Promise<Answer> {
  const url = new URL(config.prefix + encodeURIComponent(config.id), config.url);
  if (wait) url.searchParams.set("wait", `${wait}s`);
  const headers: Record<string, string> = {};
  if (config.pool !== null) headers["Relay-Pool"] = config.pool;
  if (config.token !== null) headers["Authorization"] = `Bearer ${config.token}`;
  const abort = new AbortController();
  const timer = config.clock.setTimeout(
    () => abort.abort(),
    config.timeoutMs + (wait ?? 0) * 1000,
  );
  const sentAt = config.clock.now();
  let status: number;
  let body: string;
  let response: Response;
  try {
    response = await config.fetch(url, { method, headers, signal: abort.signal });
    status = response.status;
    body = await response.text();
  } catch (cause) {
    throw new RelayClientError(
      "unreachable",
      `Relay at ${config.url} did not answer ${method} ${url.pathname}: ${describe(cause)}`,
      { cause },
    );
  } finally {
    config.clock.clearTimeout(timer);
  }
  const receivedAt = config.clock.now();
  if (config.signature) {
    const problem = await signatureProblem(
      response.headers.get("Relay-Signature"),
      body,
      // The path as sent: URL keeps the percent-encoding of the request line.
      { method, path: url.pathname, status },
      {
        ...config.signature,
        now: Math.floor(receivedAt / 1000),
      },
    );
    if (problem !== null) {
      throw new RelayClientError(
        "bad_signature",
        `Relay's answer to ${method} ${url.pathname} (${status}) is refused: ${problem}`,
        { status },
      );
    }
  }
  const number = (name: string) => {
    const value = response.headers.get(name);
    return value !== null && /^\d+$/.test(value) ? Number(value) : null;
  };
  return {
    status,
    body,
    retryAfter: number("Retry-After") ?? undefined,
    headers: {
      licenseId: response.headers.get("Relay-License-Id"),
      licenseExpires: number("Relay-License-Expires"),
      pool: response.headers.get("Relay-Pool"),
      clock: number("Relay-Clock"),
      receivedAt,
      sentAt,
    },
  };
}

function grant(answer: Answer): Grant {
  const body = object(answer);
  if (typeof body.license_file !== "string" || typeof body.license_key !== "string") {
    throw malformed(answer, "no license_file or license_key");
  }
  return {
    kind: "granted",
    licenseFile: body.license_file,
    licenseKey: body.license_key,
    expiresAt: seconds(body.expires_at, answer),
    expiresIn: seconds(body.expires_in, answer),
    headers: answer.headers,
  };
}

function object(answer: Answer): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(answer.body);
  } catch {
    throw malformed(answer, "not JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw malformed(answer, "not a JSON object");
  }
  return body as Record<string, unknown>;
}

function seconds(value: unknown, answer: Answer): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw malformed(answer, "expires_at or expires_in is not a number");
  }
  return value;
}

function malformed(answer: Answer, problem: string): RelayClientError {
  return new RelayClientError(
    "malformed_response",
    `Relay's ${answer.status} answer is malformed: ${problem}`,
    { status: answer.status },
  );
}

/** The error of an answer that is not a success, by status. */
function failure(answer: Answer): RelayClientError {
  let message = `status ${answer.status}`;
  try {
    const body = JSON.parse(answer.body);
    if (typeof body?.error === "string") message = body.error;
  } catch {
    // Not JSON: the status says it.
  }
  const code = answer.status === 401
    ? "unauthorized"
    : answer.status === 404
    ? "not_found"
    : answer.status === 409
    ? "conflict"
    : answer.status === 410
    ? "exhausted"
    : "rejected";
  return new RelayClientError(code, `Relay answered ${answer.status}: ${message}`, {
    status: answer.status,
    retryAfter: answer.retryAfter,
  });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
