/**
 * Drives a running server for the OpenAPI tests: requests whose answers are
 * checked against the document as they come (`./openapi_support.ts`), and
 * the licenses they lease.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type MintedFile, mintFiles } from "../helpers.ts";
import { fileArgs, runRelay } from "../cli/support.ts";
import type { InProcessServer } from "./in_process.ts";
import type { ApiSpec, ObservedAnswer } from "./openapi_support.ts";
import { closeQuietly, connect, send } from "./raw_connections.ts";

/** 2030-01-01T00:00:00Z, when the test files are issued (unix s). */
export const T0 = Date.UTC(2030, 0, 1) / 1000;

/** A day, in seconds. */
export const DAY = 86_400;

/** The bearer token the tests' servers accept (`--auth-token-file`). */
export const TOKEN = "t0ken";

/** Mints one file of `ttl` seconds issued at {@link T0} and adds it to `pool`, at T0. */
export async function addLicense(dir: string, pool: string, ttl: number): Promise<MintedFile> {
  const { publicKey, files } = await mintFiles(dir, 1, { issued: new Date(T0 * 1000), ttl });
  const result = await runRelay(
    ["add", ...fileArgs(files), "--public-key", publicKey, "--pool", pool],
    { cwd: dir, now: new Date(T0 * 1000) },
  );
  assert.equal(result.code, 0, result.stderr);
  return files[0];
}

/** Sends requests to a server and checks each answer against the document. */
export class ApiExerciser {
  /** The documented responses seen so far (`ApiSpec.assertConforms`'s keys). */
  readonly seen: Set<string> = new Set();
  readonly #spec: ApiSpec;
  readonly #server: InProcessServer;

  constructor(spec: ApiSpec, server: InProcessServer) {
    this.#spec = spec;
    this.#server = server;
  }

  /**
   * Sends `method path` (with the bearer {@link TOKEN} unless `token` says
   * otherwise, null: none) and asserts the status it expects and that the
   * document describes the answer.
   */
  async expect(
    status: number,
    method: string,
    path: string,
    { template, headers = {}, token = TOKEN }: {
      /** The document's path; null: a path it does not list. */
      template: string | null;
      headers?: Record<string, string>;
      token?: string | null;
    },
  ): Promise<{ headers: Headers; body: string }> {
    const response = await fetch(`${this.#server.url}${path}`, {
      method,
      headers: { ...headers, ...(token === null ? {} : { Authorization: `Bearer ${token}` }) },
      client: this.#server.client,
    });
    const body = await response.text();
    assert.equal(response.status, status, `${method} ${path}: ${body}`);
    this.#check({ method, template, status, headers: response.headers, body });
    return { headers: response.headers, body };
  }

  /** As {@link expect}, answered 400: a `Host` header that no host can have. */
  async expectBadHost(method: string, path: string, template: string): Promise<void> {
    const answer = await rawRequest(this.#server.port, { method, path, host: "a b" });
    assert.equal(answer.status, 400, `${method} ${path} with a bad Host`);
    this.#check({ method, template, ...answer });
  }

  #check(answer: ObservedAnswer): void {
    this.seen.add(this.#spec.assertConforms(answer));
  }
}

/**
 * One request written by hand on its own connection (`Connection: close`),
 * for what `fetch` will not send, such as a bad `Host` header; the answer is
 * read to the end of the connection (a HEAD answer has no body).
 */
export async function rawRequest(
  port: number,
  { method, path, host }: { method: string; path: string; host: string },
): Promise<{ status: number; headers: Headers; body: string }> {
  const conn = await connect(port);
  try {
    await send(conn, `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    const text = await new Response(conn.readable).text();
    const end = text.indexOf("\r\n\r\n");
    const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
    const headers = new Headers(lines.map((line) => {
      const colon = line.indexOf(":");
      return [line.slice(0, colon).trim(), line.slice(colon + 1).trim()] as [string, string];
    }));
    return { status: Number(statusLine.split(" ")[1]), headers, body: text.slice(end + 4) };
  } finally {
    closeQuietly(conn);
  }
}
