/**
 * Bad input against one real `relay serve` process: odd fingerprints, pool
 * headers, methods, header and body sizes, broken HTTP over raw sockets, and
 * many idle connections. Every case must get a clear 4xx (or, where the input
 * is in fact valid, the normal 2xx/410), never a 5xx, never a crash or a hang;
 * `GET /v1/health` answers 200 after every batch, and the process exits 0 on
 * SIGTERM with no error logged.
 *
 * The suite is table-driven and counts its cases; each step collects every
 * mismatch before failing, so one run reports them all.
 *
 * Only loopback: fetch and `Deno.connect` to 127.0.0.1. Every raw read races a
 * timer; every loop is bounded.
 *
 * @module
 */

import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { addMinted, dbPath, query, type ServerProcess, startServer, tempDir } from "../helpers.ts";

const HOSTNAME = "127.0.0.1";
/** The longest any single raw read may wait. */
const READ_TIMEOUT_MS = 3_000;
/** The longest any single fetch may take. */
const FETCH_TIMEOUT_MS = 5_000;

const ERR = {
  notFound: `{"error":"not found"}\n`,
  claimNotFound: `{"error":"claim not found"}\n`,
  tooLong: `{"error":"fingerprint too long"}\n`,
  invalidFingerprint: `{"error":"invalid fingerprint"}\n`,
  invalidPool: `{"error":"invalid pool header"}\n`,
  methodNotAllowed: `{"error":"method not allowed"}\n`,
} as const;

// ---------------------------------------------------------------------------
// Case bookkeeping

/** Cases checked, by group. */
const counts = new Map<string, number>();
/** Every 5xx seen anywhere, as `label: status`. */
const serverErrors: string[] = [];
/** HTTP exchanges made (fetch calls and raw-socket exchanges), by group. */
const exchanges = new Map<string, number>();
/** The group running now, for `exchanges`. */
let currentGroup = "setup";
function exchange(): void {
  exchanges.set(currentGroup, (exchanges.get(currentGroup) ?? 0) + 1);
}
/** Fingerprints that got a 201: exactly these may be in `nodes`. */
const granted = new Set<string>();
/** Observations worth reporting (printed once at the end). */
const notes: string[] = [];

/** Long values cut for failure messages. */
function clip(text: string | undefined, max = 300): string {
  return text === undefined || text.length <= max ? String(text) : `${text.slice(0, max)}…`;
}

/** One group of cases: counts them and collects every mismatch. */
class Group {
  readonly failures: string[] = [];
  constructor(readonly name: string) {
    currentGroup = name;
  }

  /** Counts one case; records `detail` when `ok` is false. */
  check(label: string, ok: boolean, detail = ""): boolean {
    counts.set(this.name, (counts.get(this.name) ?? 0) + 1);
    if (!ok) this.failures.push(`${label}${detail ? `: ${detail}` : ""}`);
    return ok;
  }

  /** Counts one case: `actual` deep-equals `expected`. */
  eq(label: string, actual: unknown, expected: unknown): boolean {
    return this.check(
      label,
      isDeepStrictEqual(actual, expected),
      `expected ${clip(JSON.stringify(expected))}, got ${clip(JSON.stringify(actual))}`,
    );
  }

  /** Counts one case: `status` is one of `allowed`; any 5xx is also recorded globally. */
  status(label: string, status: number | null, allowed: readonly number[]): boolean {
    if (status !== null && status >= 500) serverErrors.push(`${label}: ${status}`);
    return this.check(
      label,
      status !== null && allowed.includes(status),
      `expected one of ${allowed.join("/")}, got ${status}`,
    );
  }

  /** Fails the step with every mismatch. */
  finish(): void {
    assert.deepEqual(this.failures, [], `${this.name}: ${this.failures.length} case(s) failed`);
  }
}

// ---------------------------------------------------------------------------
// HTTP through fetch

interface Reply {
  status: number;
  headers: Headers;
  body: string;
  ms: number;
}

/** One fetch, body read to the end, bounded by FETCH_TIMEOUT_MS. */
async function send(
  base: string,
  method: string,
  path: string,
  init: { headers?: HeadersInit; body?: BodyInit } = {},
): Promise<Reply> {
  exchange();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  const started = performance.now();
  try {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: init.headers,
      body: init.body,
      signal: controller.signal,
    });
    const body = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      body,
      ms: performance.now() - started,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The license key of a 201 body, or null. */
function leasedKey(reply: { status: number; body: string }): string | null {
  if (reply.status !== 201) return null;
  try {
    return JSON.parse(reply.body).license_key ?? null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------
// HTTP over raw sockets

const utf8 = new TextEncoder();

/** Bytes from strings (UTF-8) and byte arrays, concatenated. */
function bytes(...parts: (string | number[] | Uint8Array)[]): Uint8Array {
  const chunks = parts.map((part) =>
    typeof part === "string" ? utf8.encode(part) : Uint8Array.from(part)
  );
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** Bytes as a string of code units 0–255 (binary-safe). */
function latin1(data: Uint8Array): string {
  let text = "";
  for (let i = 0; i < data.length; i += 8192) {
    text += String.fromCharCode(...data.subarray(i, i + 8192));
  }
  return text;
}

interface RawResponse {
  status: number;
  head: string;
  body: string;
}

interface RawResult {
  /** Final (non-1xx) responses, complete ones only. */
  responses: RawResponse[];
  /** 1xx statuses seen. */
  interim: number[];
  /** Everything received, as code units 0–255. */
  received: string;
  /** How reading ended. */
  end: "done" | "eof" | "reset" | "timeout";
  /** A write that failed (the server may close early). */
  writeError: string | null;
}

/** Parses complete HTTP/1.x responses from the start of `text`. */
function parseResponses(
  text: string,
  head: boolean,
): { responses: RawResponse[]; interim: number[] } {
  const responses: RawResponse[] = [];
  const interim: number[] = [];
  let pos = 0;
  for (let guard = 0; guard < 100 && pos < text.length; guard++) {
    const end = text.indexOf("\r\n\r\n", pos);
    if (end < 0) break;
    const headText = text.slice(pos, end);
    const match = /^HTTP\/\d\.\d (\d{3})/.exec(headText);
    if (!match) break;
    const status = Number(match[1]);
    pos = end + 4;
    if (status < 200) {
      interim.push(status);
      continue;
    }
    // HEAD answers, 204 and 304 have no body; otherwise Content-Length, or up to EOF.
    const length = head || status === 204 || status === 304
      ? 0
      : Number(/\r\ncontent-length: *(\d+)/i.exec(headText)?.[1] ?? -1);
    if (length < 0 || text.length - pos < length) break;
    responses.push({ status, head: headText, body: text.slice(pos, pos + length) });
    pos += length;
  }
  return { responses, interim };
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let written = 0;
  for (let guard = 0; written < data.length && guard < 100_000; guard++) {
    written += await conn.write(data.subarray(written));
  }
}

/** A read that cannot hang: resolves with the byte count, null at EOF, an error, or "timeout". */
async function timedRead(
  conn: Deno.Conn,
  buffer: Uint8Array,
  ms: number,
): Promise<number | null | "timeout" | Error> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      conn.read(buffer).then(
        (n) => n,
        (error) => error instanceof Error ? error : new Error(String(error)),
      ),
      new Promise<"timeout">((
        resolve,
      ) => (timer = setTimeout(() => resolve("timeout"), Math.max(1, ms)))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

interface RawOptions {
  /** Complete final responses to wait for (default 1). */
  want?: number;
  /** The request is HEAD: responses have no body. */
  head?: boolean;
  /** After the wanted responses, wait (up to this long) to see whether the server closes. */
  waitForCloseMs?: number;
  /** Shut down our write side after sending. */
  closeWrite?: boolean;
  /** Stop as soon as this holds for what was received. */
  until?: (received: string) => boolean;
  /** Overall bound on reading (default READ_TIMEOUT_MS). */
  timeoutMs?: number;
}

/** Reads replies from `conn` until the wanted responses, EOF, a reset or the timeout. */
async function readReplies(
  conn: Deno.Conn,
  options: RawOptions,
  writeError: string | null = null,
): Promise<RawResult> {
  const want = options.want ?? 1;
  const deadline = performance.now() + (options.timeoutMs ?? READ_TIMEOUT_MS);
  const buffer = new Uint8Array(64 * 1024);
  let received = "";
  let end: RawResult["end"] = "timeout";
  let closeDeadline: number | null = null;
  for (let guard = 0; guard < 10_000; guard++) {
    const parsed = parseResponses(received, options.head ?? false);
    if (options.until?.(received) || parsed.responses.length >= want) {
      if (!options.waitForCloseMs) {
        end = "done";
        break;
      }
      closeDeadline ??= performance.now() + options.waitForCloseMs;
    }
    const limit = Math.min(deadline, closeDeadline ?? deadline) - performance.now();
    if (limit <= 0) {
      end = closeDeadline !== null ? "done" : "timeout";
      break;
    }
    const result = await timedRead(conn, buffer, limit);
    if (result === "timeout") continue;
    if (result === null) {
      end = "eof";
      break;
    }
    if (result instanceof Error) {
      end = "reset";
      break;
    }
    received += latin1(buffer.subarray(0, result));
  }
  const { responses, interim } = parseResponses(received, options.head ?? false);
  return { responses, interim, received, end, writeError };
}

/** Opens a socket, sends `data`, reads replies, always closes. */
async function raw(
  port: number,
  data: string | Uint8Array,
  options: RawOptions = {},
): Promise<RawResult> {
  exchange();
  const conn = await Deno.connect({ hostname: HOSTNAME, port });
  try {
    let writeError: string | null = null;
    try {
      await writeAll(conn, typeof data === "string" ? utf8.encode(data) : data);
      if (options.closeWrite) await conn.closeWrite();
    } catch (error) {
      writeError = String(error);
    }
    return await readReplies(conn, options, writeError);
  } finally {
    conn.close();
  }
}

/** A minimal request over a raw socket. */
function request(
  method: string,
  target: string,
  headers: string[] = ["Host: relay"],
  body = "",
): string {
  return `${method} ${target} HTTP/1.1\r\n${headers.map((h) => `${h}\r\n`).join("")}\r\n${body}`;
}

function firstStatus(result: RawResult): number | null {
  return result.responses[0]?.status ?? null;
}

/** Describes a raw result for failure messages. */
function describe(result: RawResult): string {
  return `end=${result.end} statuses=${result.responses.map((r) => r.status).join(",") || "none"}` +
    (result.writeError ? ` writeError=${result.writeError}` : "") +
    ` received=${JSON.stringify(result.received.slice(0, 120))}`;
}

/**
 * A raw exchange with a 2xx/4xx in `allowed`, or (when `closeOk`) a closed
 * connection without any response; never a 5xx, never a timeout.
 */
function checkRaw(
  group: Group,
  label: string,
  result: RawResult,
  allowed: readonly number[],
  closeOk = false,
): boolean {
  for (const response of result.responses) {
    if (response.status >= 500) serverErrors.push(`${label}: ${response.status}`);
  }
  const status = firstStatus(result);
  if (status === null) {
    return group.check(
      label,
      closeOk && result.end !== "timeout",
      `no response (${describe(result)})`,
    );
  }
  return group.check(
    label,
    allowed.includes(status),
    `expected ${allowed.join("/")}; ${describe(result)}`,
  );
}

// ---------------------------------------------------------------------------
// Health

async function checkHealth(group: Group, server: ServerProcess, label: string): Promise<void> {
  const reply = await send(server.url, "GET", "/v1/health");
  group.eq(`health after ${label}`, { status: reply.status, body: reply.body }, {
    status: 200,
    body: "",
  });
  let exited = false;
  await Promise.race([
    server.process.status.then(() => (exited = true)),
    new Promise((resolve) => setTimeout(resolve, 0)),
  ]);
  group.check(`process alive after ${label}`, !exited, "relay exited");
}

// ---------------------------------------------------------------------------
// Tables

/** Percent-encodes a whole fingerprint (encodeURIComponent, plus `'`). */
function enc(text: string): string {
  return encodeURIComponent(text).replaceAll("'", "%27");
}

/** Valid fingerprints sent through fetch: [label, path segment as sent, fingerprint stored]. */
const VALID_FINGERPRINTS: [string, string, string][] = [
  ["1 char", "z", "z"],
  ["exactly 256 ASCII characters", "f".repeat(256), "f".repeat(256)],
  ["256 two-byte characters", enc("é".repeat(256)), "é".repeat(256)],
  ["256 three-byte characters", enc("日".repeat(256)), "日".repeat(256)],
  ["256 four-byte characters (surrogate pairs)", enc("😀".repeat(256)), "😀".repeat(256)],
  ["%2F alone", "%2F", "/"],
  ["%2F inside", "a%2Fb", "a/b"],
  ["%2f%2f lowercase", "%2f%2f", "//"],
  ["encoded traversal", "%2E%2E%2Fetc%2Fpasswd", "../etc/passwd"],
  ["a%2F..%2Fb", "a%2F..%2Fb", "a/../b"],
  ["three dots", "...", "..."],
  ["..a", "..a", "..a"],
  ["apostrophe, raw", "'", "'"],
  ["apostrophe, %27", "%27x", "'x"],
  ["double quote, %22", "%22", '"'],
  ["backtick, %60", "%60", "`"],
  ["SQL: ' OR 1=1 --", enc("' OR 1=1 --"), "' OR 1=1 --"],
  [
    'SQL: "; DROP TABLE licenses; --',
    enc('"; DROP TABLE licenses; --'),
    '"; DROP TABLE licenses; --',
  ],
  ["SQL: %27%3B%20DELETE%20FROM%20nodes", "%27%3B%20DELETE%20FROM%20nodes", "'; DELETE FROM nodes"],
  [
    "SQL: UPDATE",
    enc("1; UPDATE licenses SET node_id = NULL; --"),
    "1; UPDATE licenses SET node_id = NULL; --",
  ],
  [
    "SQL: UNION",
    enc("x' UNION SELECT key FROM licenses --"),
    "x' UNION SELECT key FROM licenses --",
  ],
  [
    "SQL: Robert'); DROP TABLE nodes;--",
    enc("Robert'); DROP TABLE nodes;--"),
    "Robert'); DROP TABLE nodes;--",
  ],
  ["RTL override U+202E", enc("abc\u202edef"), "abc\u202edef"],
  ["emoji", enc("😀"), "😀"],
  ["ZWJ sequence", enc("👨‍👩‍👧"), "👨‍👩‍👧"],
  ["zero-width space", enc("a\u200bb"), "a\u200bb"],
  ["byte order mark", enc("\ufeffbom"), "\ufeffbom"],
  ["combining accent", enc("e\u0301"), "e\u0301"],
  ["line separator U+2028", enc("a\u2028b"), "a\u2028b"],
  ["highest code point U+10FFFF", enc("\u{10ffff}"), "\u{10ffff}"],
  // A C1 control: not in the C0/DEL set the server refuses (see the report).
  ["C1 control NEL, %C2%85", "%C2%85", "\u0085"],
  ["plus sign stays a plus", "a+b", "a+b"],
  ["%2B", "%2B", "+"],
  ["leading and trailing spaces", "%20a%20", " a "],
  ["percent sign, %25", "%25", "%"],
  ["double-encoded %252F", "%252F", "%2F"],
  ["double-encoded NUL %2500", "%2500", "%00"],
  ["question mark, %3F", "q%3Fx%3D1", "q?x=1"],
  ["hash, %23", "h%23x", "h#x"],
  ["backslash, %5C", "%5C", "\\"],
  ["sub-delimiters", "a;b=c&d,e!$()*", "a;b=c&d,e!$()*"],
  ["JNDI lookup text", enc("${jndi:ldap://127.0.0.1/x}"), "${jndi:ldap://127.0.0.1/x}"],
  ["HTML", enc("<script>alert(1)</script>"), "<script>alert(1)</script>"],
  ["JSON", enc('{"fingerprint":null}'), '{"fingerprint":null}'],
  ["escaped newline text", enc("\\n\\r\\0"), "\\n\\r\\0"],
];

/** Fingerprints refused through fetch: [label, path as sent, status, body] (PUT and DELETE). */
const BAD_FINGERPRINTS: [string, string, number, string][] = [
  ["empty", "/v1/nodes/", 404, ERR.notFound],
  ["a single slash", "/v1/nodes//", 404, ERR.notFound],
  ["257 ASCII characters", `/v1/nodes/${"f".repeat(257)}`, 400, ERR.tooLong],
  ["257 three-byte characters", `/v1/nodes/${enc("日".repeat(257))}`, 400, ERR.tooLong],
  ["257 four-byte characters", `/v1/nodes/${enc("😀".repeat(257))}`, 400, ERR.tooLong],
  ["10 kB path", `/v1/nodes/${"p".repeat(10_240)}`, 400, ERR.tooLong],
  ["10 kB once decoded (%41 × 10240)", `/v1/nodes/${"%41".repeat(10_240)}`, 400, ERR.tooLong],
  // fetch normalizes these dot segments itself; the raw-socket table sends them as is.
  ["..", "/v1/nodes/..", 404, ERR.notFound],
  ["%2E%2E", "/v1/nodes/%2E%2E", 404, ERR.notFound],
  ["NUL alone", "/v1/nodes/%00", 400, ERR.invalidFingerprint],
  ["DEL alone", "/v1/nodes/%7F", 400, ERR.invalidFingerprint],
  ...Array.from({ length: 32 }, (_, code): [string, string, number, string] => {
    const hex = code.toString(16).toUpperCase().padStart(2, "0");
    return [`control %${hex}`, `/v1/nodes/x%${hex}y`, 400, ERR.invalidFingerprint];
  }),
  ["control %7F", "/v1/nodes/x%7Fy", 400, ERR.invalidFingerprint],
  ["invalid UTF-8 %FF", "/v1/nodes/%FF", 400, ERR.invalidFingerprint],
  ["invalid UTF-8 %FE", "/v1/nodes/a%FEb", 400, ERR.invalidFingerprint],
  ["invalid UTF-8 %C3%28", "/v1/nodes/%C3%28", 400, ERR.invalidFingerprint],
  ["lone high surrogate %ED%A0%80", "/v1/nodes/%ED%A0%80", 400, ERR.invalidFingerprint],
  ["lone low surrogate %ED%BF%BF", "/v1/nodes/%ED%BF%BF", 400, ERR.invalidFingerprint],
  ["overlong slash %C0%AF", "/v1/nodes/%C0%AF", 400, ERR.invalidFingerprint],
  ["overlong slash %E0%80%AF", "/v1/nodes/%E0%80%AF", 400, ERR.invalidFingerprint],
  ["beyond U+10FFFF %F4%90%80%80", "/v1/nodes/%F4%90%80%80", 400, ERR.invalidFingerprint],
  ["lone continuation byte %80", "/v1/nodes/%80", 400, ERR.invalidFingerprint],
  ["truncated sequence a%C3", "/v1/nodes/a%C3", 400, ERR.invalidFingerprint],
  ["truncated emoji %F0%9F%98", "/v1/nodes/%F0%9F%98", 400, ERR.invalidFingerprint],
  ["five-byte form %F8%88%80%80%80", "/v1/nodes/%F8%88%80%80%80", 400, ERR.invalidFingerprint],
  ["malformed %", "/v1/nodes/%", 400, ERR.invalidFingerprint],
  ["malformed %G1", "/v1/nodes/%G1", 400, ERR.invalidFingerprint],
  ["malformed %2", "/v1/nodes/%2", 400, ERR.invalidFingerprint],
  ["malformed a%", "/v1/nodes/a%", 400, ERR.invalidFingerprint],
  ["malformed %%", "/v1/nodes/%%", 400, ERR.invalidFingerprint],
  ["malformed %%41", "/v1/nodes/%%41", 400, ERR.invalidFingerprint],
  ["IIS-style %u0041", "/v1/nodes/%u0041", 400, ERR.invalidFingerprint],
];

/** Request targets sent as is over a raw socket: [label, target bytes, expectation]. */
type RawTargetExpect =
  | { kind: "valid"; stored: string }
  | { kind: "json"; status: number; body: string }
  /** Refused by the HTTP parser: 400 without a JSON body, or the connection closed. */
  | { kind: "parser" };
const RAW_TARGETS: [string, Uint8Array, RawTargetExpect][] = [
  ["raw ..", bytes("/v1/nodes/.."), { kind: "json", status: 404, body: ERR.notFound }],
  ["raw %2E%2E", bytes("/v1/nodes/%2E%2E"), { kind: "json", status: 404, body: ERR.notFound }],
  ["raw %2e", bytes("/v1/nodes/%2e"), { kind: "json", status: 404, body: ERR.notFound }],
  ["raw .", bytes("/v1/nodes/."), { kind: "json", status: 404, body: ERR.notFound }],
  ["raw .%2E", bytes("/v1/nodes/.%2E"), { kind: "json", status: 404, body: ERR.notFound }],
  ["raw ../.. escaping the prefix", bytes("/v1/nodes/../../v1/health"), {
    kind: "json",
    status: 405,
    body: ERR.methodNotAllowed,
  }],
  ["raw x/../dotdot-b resolves to dotdot-b", bytes("/v1/nodes/x/../dotdot-b"), {
    kind: "valid",
    stored: "dotdot-b",
  }],
  ["raw double quote", bytes('/v1/nodes/q"q'), { kind: "valid", stored: 'q"q' }],
  ["raw <>", bytes("/v1/nodes/<x>"), { kind: "valid", stored: "<x>" }],
  ["raw `{}|^", bytes("/v1/nodes/b`{}|^"), { kind: "valid", stored: "b`{}|^" }],
  ["raw UTF-8 bytes", bytes("/v1/nodes/café-raw"), { kind: "valid", stored: "café-raw" }],
  ["raw 10 kB path", bytes(`/v1/nodes/${"r".repeat(10_240)}`), {
    kind: "json",
    status: 400,
    body: ERR.tooLong,
  }],
  ["raw backslash (a URL treats it as /)", bytes("/v1/nodes/a\\b"), {
    kind: "json",
    status: 404,
    body: ERR.notFound,
  }],
  ["raw space", bytes("/v1/nodes/a b"), { kind: "parser" }],
  ["raw tab", bytes("/v1/nodes/a\tb"), { kind: "parser" }],
  ["raw NUL", bytes("/v1/nodes/a", [0], "b"), { kind: "parser" }],
  ["raw 0x01", bytes("/v1/nodes/a", [1], "b"), { kind: "parser" }],
  ["raw DEL", bytes("/v1/nodes/a", [0x7f], "b"), { kind: "parser" }],
  ["raw Latin-1 byte 0xE9 (invalid UTF-8)", bytes("/v1/nodes/caf", [0xe9]), { kind: "parser" }],
  ["raw 100 kB path", bytes(`/v1/nodes/${"r".repeat(100_000)}`), { kind: "parser" }],
];

// ---------------------------------------------------------------------------

Deno.test("bad input never gets a 5xx, a crash or a hang, and the server stays healthy", async (t) => {
  const started = performance.now();
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const unpooled = await addMinted(dir.path, 50);
  const prod = await addMinted(dir.path, 2, { pool: "prod" });
  // A pool with a non-ASCII name, to see how a UTF-8 Relay-Pool header is read.
  const cafe = await addMinted(dir.path, 1, { pool: "café" });
  const allKeys = [...unpooled, ...prod, ...cafe].map((file) => file.key).sort();
  const poolOfKey = new Map<string, string | null>([
    ...unpooled.map((file): [string, null] => [file.key, null]),
    ...prod.map((file): [string, string] => [file.key, "prod"]),
    ...cafe.map((file): [string, string] => [file.key, "café"]),
  ]);
  await using server = await startServer([], { cwd: dir.path });
  const base = server.url;
  const port = server.port;

  /** PUT (201), PUT again (202), DELETE (204), with a DELETE (404) first; through fetch. */
  async function claimCycle(
    group: Group,
    label: string,
    path: string,
    stored: string,
    headers: Record<string, string> = {},
    pool: string | null = null,
  ): Promise<void> {
    const before = await send(base, "DELETE", path, { headers });
    group.status(`${label}: DELETE before claim`, before.status, [404]);
    group.eq(`${label}: DELETE before claim body`, before.body, ERR.claimNotFound);
    const created = await send(base, "PUT", path, { headers });
    if (group.status(`${label}: PUT`, created.status, [201])) granted.add(stored);
    const key = leasedKey(created);
    group.eq(
      `${label}: pool of the leased license`,
      key === null ? "none" : poolOfKey.get(key),
      pool,
    );
    const extended = await send(base, "PUT", path, { headers });
    group.status(`${label}: PUT again (heartbeat)`, extended.status, [202]);
    const released = await send(base, "DELETE", path, { headers });
    group.status(`${label}: DELETE`, released.status, [204]);
    group.eq(`${label}: DELETE body`, released.body, "");
  }

  /** DELETE a fingerprint that may hold a lease after an odd request; records it if it did. */
  async function cleanup(group: Group, label: string, fingerprint: string): Promise<number> {
    const reply = await send(base, "DELETE", `/v1/nodes/${enc(fingerprint)}`);
    group.status(`${label}: cleanup DELETE`, reply.status, [204, 404]);
    if (reply.status === 204) granted.add(fingerprint);
    return reply.status;
  }

  await t.step("fingerprints (PUT and DELETE)", async () => {
    const group = new Group("fingerprints");
    for (const [label, segment, stored] of VALID_FINGERPRINTS) {
      await claimCycle(group, label, `/v1/nodes/${segment}`, stored);
    }
    await checkHealth(group, server, "valid fingerprints");

    for (const [label, path, status, body] of BAD_FINGERPRINTS) {
      for (const method of ["PUT", "DELETE"]) {
        const reply = await send(base, method, path);
        group.status(`${label}: ${method}`, reply.status, [status]);
        group.eq(`${label}: ${method} body`, reply.body, body);
        group.eq(
          `${label}: ${method} Content-Type`,
          reply.headers.get("Content-Type"),
          "application/json",
        );
      }
    }
    await checkHealth(group, server, "bad fingerprints");

    for (const [label, target, expect] of RAW_TARGETS) {
      const sendRaw = (method: string) =>
        raw(
          port,
          bytes(`${method} `, target, " HTTP/1.1\r\nHost: relay\r\nContent-Length: 0\r\n\r\n"),
        );
      if (expect.kind === "valid") {
        const created = await sendRaw("PUT");
        if (checkRaw(group, `${label}: PUT`, created, [201])) granted.add(expect.stored);
        checkRaw(group, `${label}: DELETE`, await sendRaw("DELETE"), [204]);
        continue;
      }
      for (const method of ["PUT", "DELETE"]) {
        const result = await sendRaw(method);
        if (expect.kind === "json") {
          checkRaw(group, `${label}: ${method}`, result, [expect.status]);
          group.eq(`${label}: ${method} body`, result.responses[0]?.body ?? null, expect.body);
        } else {
          checkRaw(group, `${label}: ${method}`, result, [400, 414, 431], true);
        }
      }
    }
    await checkHealth(group, server, "raw request targets");

    // The database keeps every license, and each accepted fingerprint is stored as decoded.
    group.eq(
      "licenses intact",
      query<{ key: string }>(db, "SELECT key FROM licenses ORDER BY key").map((row) => row.key),
      allKeys,
    );
    for (const [label, , stored] of VALID_FINGERPRINTS) {
      const rows = query<{ fingerprint: string }>(
        db,
        "SELECT fingerprint FROM nodes WHERE fingerprint = ?",
        stored,
      );
      group.eq(`${label}: stored exactly once, as decoded`, rows.map((row) => row.fingerprint), [
        stored,
      ]);
    }
    group.finish();
  });

  await t.step("Relay-Pool header values", async () => {
    const group = new Group("pool header");
    // A node holding a prod lease: a bad pool header on its DELETE must not release it.
    const holder = await send(base, "PUT", "/v1/nodes/pool-holder", {
      headers: { "Relay-Pool": "prod" },
    });
    if (group.status("holder claims in prod", holder.status, [201])) granted.add("pool-holder");

    /** Header values as byte strings: each code unit is one byte on the wire. */
    const asBytes = (text: string) => latin1(utf8.encode(text));
    const unknown: [string, string][] = [
      ["SQL: ' OR 1=1 --", "' OR 1=1 --"],
      ["SQL: prod' OR '1'='1", "prod' OR '1'='1"],
      ['SQL: prod"; DROP TABLE pools; --', 'prod"; DROP TABLE pools; --'],
      ["SQL: '; DELETE FROM licenses; --", "'; DELETE FROM licenses; --"],
      ["percent-encoded prod%27", "prod%27"],
      ["percent-encoded %70rod", "%70rod"],
      ["single quote", "'"],
      ["double quote", '"'],
      ["backtick", "`"],
      ['quoted "prod"', '"prod"'],
      ["quoted 'prod'", "'prod'"],
      ["1 char", "p"],
      ["10 kB", "x".repeat(10_240)],
      ["upper case PROD", "PROD"],
      ["mixed case Prod", "Prod"],
      ["list prod,prod", "prod,prod"],
      ["list prod, prod", "prod, prod"],
      ["prod + NBSP (not HTTP whitespace)", "prod\u00a0"],
      ["UTF-8 bytes: 日本", asBytes("日本")],
      ["UTF-8 bytes: emoji", asBytes("😀")],
      ["UTF-8 bytes: RTL override", asBytes("prod\u202e")],
      ["UTF-8 bytes: zero-width space", asBytes("prod\u200b")],
      // Byte 0xE9 alone is not UTF-8 for "é": the café pool must not match it.
      ["Latin-1 byte for café (invalid UTF-8)", "caf\u00e9"],
    ];
    for (const [label, value] of unknown) {
      const headers = { "Relay-Pool": value };
      const put = await send(base, "PUT", "/v1/nodes/pool-bad", { headers });
      group.status(`${label}: PUT`, put.status, [400]);
      group.eq(`${label}: PUT body`, put.body, ERR.invalidPool);
      if (put.status === 201) {
        granted.add("pool-bad");
        await send(base, "DELETE", "/v1/nodes/pool-bad", { headers });
      }
      // The node is looked up first, as the reference Relay does.
      const unknownNode = await send(base, "DELETE", "/v1/nodes/pool-nobody", { headers });
      group.status(`${label}: DELETE of a node without a lease`, unknownNode.status, [404]);
      group.eq(
        `${label}: DELETE of a node without a lease body`,
        unknownNode.body,
        ERR.claimNotFound,
      );
      const held = await send(base, "DELETE", "/v1/nodes/pool-holder", { headers });
      group.status(`${label}: DELETE of a leasing node`, held.status, [400]);
      group.eq(`${label}: DELETE of a leasing node body`, held.body, ERR.invalidPool);
    }
    await checkHealth(group, server, "unknown pools");

    // Valid values: [label, header value, the pool it selects].
    const valid: [string, string, string | null][] = [
      ["the real pool prod", "prod", "prod"],
      ["prod with surrounding spaces", "  prod  ", "prod"],
      ["only spaces: as if absent", "     ", null],
      ["only a tab: as if absent", "\t", null],
      ["empty: as if absent", "", null],
      ["UTF-8 bytes of café", asBytes("café"), "café"],
    ];
    for (const [index, [label, value, pool]] of valid.entries()) {
      await claimCycle(group, label, `/v1/nodes/pool-ok-${index}`, `pool-ok-${index}`, {
        "Relay-Pool": value,
      }, pool);
    }
    notes.push(
      "Relay-Pool: fetch only takes byte strings (a code point above U+00FF throws a TypeError " +
        "before sending), so non-ASCII values were sent as raw UTF-8 bytes spelled as byte strings",
    );

    // Raw sockets: header shapes fetch cannot send.
    const rawCases: [string, string[], number, string | null][] = [
      ["two Relay-Pool headers", ["Relay-Pool: prod", "Relay-Pool: prod"], 400, "invalid"],
      ["empty Relay-Pool header: as if absent", ["Relay-Pool:"], 201, null],
      ["spaces-only Relay-Pool header: as if absent", ["Relay-Pool:      "], 201, null],
      ["lower-case header name", ["relay-pool: prod"], 201, "prod"],
      ["Relay_Pool (underscore) is another header", ["Relay_Pool: prod"], 201, null],
      ["UTF-8 café", ["Relay-Pool: café"], 201, "café"],
    ];
    for (const [index, [label, headers, status, pool]] of rawCases.entries()) {
      const fingerprint = `pool-raw-${index}`;
      const result = await raw(
        port,
        request("PUT", `/v1/nodes/${fingerprint}`, ["Host: relay", ...headers]),
      );
      checkRaw(group, `${label}: PUT`, result, [status]);
      if (status === 201) {
        const key = leasedKey({
          status: firstStatus(result) ?? 0,
          body: result.responses[0]?.body ?? "",
        });
        group.eq(
          `${label}: pool of the leased license`,
          key === null ? "none" : poolOfKey.get(key),
          pool,
        );
      } else {
        group.eq(`${label}: body`, result.responses[0]?.body ?? null, ERR.invalidPool);
      }
      const release = await raw(
        port,
        request("DELETE", `/v1/nodes/${fingerprint}`, ["Host: relay", ...headers]),
      );
      checkRaw(group, `${label}: DELETE`, release, status === 201 ? [204] : [404]);
      if (firstStatus(result) === 201) granted.add(fingerprint);
      if (firstStatus(result) === 201 && firstStatus(release) !== 204) {
        await cleanup(group, label, fingerprint);
      }
    }

    const released = await send(base, "DELETE", "/v1/nodes/pool-holder", {
      headers: { "Relay-Pool": "prod" },
    });
    group.status("holder releases in prod", released.status, [204]);
    await checkHealth(group, server, "pool headers");
    group.finish();
  });

  await t.step("methods", async () => {
    const group = new Group("methods");
    const nodeMethods = [
      "PATCH",
      "POST",
      "OPTIONS",
      "GET",
      "FOO",
      "M-SEARCH",
      "PROPFIND",
      "patch",
      "foo",
    ];
    for (const method of nodeMethods) {
      const reply = await send(base, method, "/v1/nodes/method-node");
      group.status(`${method} /v1/nodes/x`, reply.status, [405]);
      group.eq(`${method} /v1/nodes/x: body and Allow`, [reply.body, reply.headers.get("Allow")], [
        ERR.methodNotAllowed,
        "PUT, DELETE",
      ]);
    }
    const head = await send(base, "HEAD", "/v1/nodes/method-node");
    group.status("HEAD /v1/nodes/x", head.status, [405]);
    group.eq("HEAD /v1/nodes/x: no body, Allow", [head.body, head.headers.get("Allow")], [
      "",
      "PUT, DELETE",
    ]);
    for (const method of ["PUT", "DELETE", "POST", "PATCH", "OPTIONS", "FOO"]) {
      const reply = await send(base, method, "/v1/health");
      group.status(`${method} /v1/health`, reply.status, [405]);
      group.eq(`${method} /v1/health: Allow`, reply.headers.get("Allow"), "GET, HEAD");
    }
    const healthHead = await send(base, "HEAD", "/v1/health");
    group.status("HEAD /v1/health", healthHead.status, [200]);
    for (const method of ["TRACE", "CONNECT", "TRACK"]) {
      let refused = false;
      try {
        await send(base, method, "/v1/nodes/method-node");
      } catch (error) {
        refused = error instanceof TypeError;
      }
      group.check(`fetch refuses ${method} itself`, refused, "fetch sent it");
    }

    // Raw sockets: what fetch refuses or rewrites.
    const rawMethods: [string, string | Uint8Array, number[], string | null][] = [
      ["TRACE /v1/nodes/x", request("TRACE", "/v1/nodes/method-node"), [405], "PUT, DELETE"],
      ["TRACK /v1/nodes/x", request("TRACK", "/v1/nodes/method-node"), [405], "PUT, DELETE"],
      ["TRACE /v1/health", request("TRACE", "/v1/health"), [405], "GET, HEAD"],
      [
        "CONNECT authority-form",
        request("CONNECT", `${HOSTNAME}:${port}`, [`Host: ${HOSTNAME}:${port}`]),
        [400, 404, 405],
        null,
      ],
      ["CONNECT with a path", request("CONNECT", "/v1/nodes/method-node"), [400, 405], null],
      // fetch upper-cases "put"; the server itself does not (nor does Go's net/http).
      [
        "lower-case put",
        request("put", "/v1/nodes/method-lower", ["Host: relay", "Content-Length: 0"]),
        [400, 405],
        "PUT, DELETE",
      ],
      ["lower-case delete", request("delete", "/v1/nodes/method-lower"), [400, 405], "PUT, DELETE"],
      ["lower-case get /v1/health", request("get", "/v1/health"), [400, 405], "GET, HEAD"],
      ["unknown token FOO", request("FOO", "/v1/nodes/method-node"), [405], "PUT, DELETE"],
      ["5000-character method", request("X".repeat(5000), "/v1/nodes/method-node"), [
        400,
        405,
        414,
        431,
      ], null],
      ["method with @", request("G@T", "/v1/health"), [400], null],
      [
        "method with a control byte",
        bytes("GE", [1], "T /v1/health HTTP/1.1\r\nHost: relay\r\n\r\n"),
        [400],
        null,
      ],
      ["empty method", request("", "/v1/health"), [400], null],
    ];
    for (const [label, data, allowed, allow] of rawMethods) {
      const result = await raw(port, data);
      if (
        checkRaw(group, label, result, allowed, true) && allow !== null &&
        firstStatus(result) === 405
      ) {
        group.check(
          `${label}: Allow`,
          result.responses[0].head.toLowerCase().includes(`allow: ${allow.toLowerCase()}`),
          result.responses[0].head,
        );
      }
    }
    await checkHealth(group, server, "methods");
    group.finish();
  });

  await t.step("header and body sizes, framing", async () => {
    const group = new Group("headers and bodies");
    const big = "a".repeat(20 * 1024);
    group.status(
      "one 20 kB header on GET /v1/health",
      (await send(base, "GET", "/v1/health", { headers: { "X-Big": big } })).status,
      [200, 400, 431],
    );
    const bigClaim = await send(base, "PUT", "/v1/nodes/big-header", { headers: { "X-Big": big } });
    group.status("one 20 kB header on PUT", bigClaim.status, [201, 400, 431]);
    if (bigClaim.status === 201) granted.add("big-header");
    group.status(
      "DELETE with one 20 kB header",
      (await send(base, "DELETE", "/v1/nodes/big-header", { headers: { "X-Big": big } })).status,
      bigClaim.status === 201 ? [204] : [404, 400, 431],
    );

    const many: Record<string, string> = {};
    for (let i = 0; i < 200; i++) many[`X-Header-${i}`] = "v";
    const manyReply = await send(base, "GET", "/v1/health", { headers: many });
    group.status("200 headers", manyReply.status, [200, 400, 431]);
    notes.push(`200 headers through fetch: ${manyReply.status}`);
    const ninety = Array.from({ length: 90 }, (_, i) => `X-Header-${i}: v`);
    checkRaw(
      group,
      "90 headers (raw)",
      await raw(port, request("GET", "/v1/health", ["Host: relay", ...ninety])),
      [200],
    );

    const block: Record<string, string> = {};
    for (let i = 0; i < 40; i++) block[`X-Block-${i}`] = "b".repeat(2048);
    let blockStatus: number | string;
    try {
      blockStatus = (await send(base, "GET", "/v1/health", { headers: block })).status;
    } catch (error) {
      blockStatus = `fetch failed: ${error}`;
    }
    group.check(
      "80 kB header block (fetch): 400/431 or closed",
      blockStatus === 400 || blockStatus === 431 || typeof blockStatus === "string",
      String(blockStatus),
    );
    if (typeof blockStatus === "number" && blockStatus >= 500) {
      serverErrors.push(`80 kB header block: ${blockStatus}`);
    }
    notes.push(`80 kB header block through fetch: ${blockStatus}`);
    const rawBlock = (kb: number) =>
      request("GET", "/v1/health", [
        "Host: relay",
        ...Array.from({ length: kb / 2 }, (_, i) => `X-Block-${i}: ${"b".repeat(2048)}`),
      ]);
    const block80 = await raw(port, rawBlock(80));
    checkRaw(group, "80 kB header block (raw)", block80, [400, 431], true);
    notes.push(
      `80 kB header block (raw): ${firstStatus(block80) ?? "no response"} (${block80.end})`,
    );
    checkRaw(group, "500 kB header block (raw)", await raw(port, rawBlock(500)), [400, 431], true);
    await checkHealth(group, server, "large headers");

    const megabyte = new Uint8Array(1024 * 1024).fill(0x61);
    const bodyClaim = await send(base, "PUT", "/v1/nodes/body-1mb", { body: megabyte });
    group.status("1 MB body on PUT", bodyClaim.status, [201, 400, 413]);
    if (bodyClaim.status === 201) granted.add("body-1mb");
    group.status(
      "1 MB body on DELETE",
      (await send(base, "DELETE", "/v1/nodes/body-1mb", { body: megabyte })).status,
      bodyClaim.status === 201 ? [204] : [404, 400, 413],
    );
    group.status(
      "1 MB JSON garbage with Content-Type",
      (await send(base, "PUT", "/v1/nodes/body-json", {
        body: "{".repeat(1024 * 1024),
        headers: { "Content-Type": "application/json" },
      })).status,
      [201, 400, 413],
    );
    await cleanup(group, "1 MB JSON garbage", "body-json");
    group.status(
      "1 MB body on POST /v1/health",
      (await send(base, "POST", "/v1/health", { body: megabyte })).status,
      [405, 413],
    );
    await checkHealth(group, server, "large bodies");

    // Framing over raw sockets: [label, fingerprint, request, allowed statuses, closing without a response is fine].
    const framing: [string, string, string, number[], boolean][] = [
      [
        "lying Content-Length, then close",
        "cl-lie",
        request("PUT", "/v1/nodes/cl-lie", ["Host: relay", "Content-Length: 100"], "abc"),
        [201, 400, 408],
        true,
      ],
      [
        "Content-Length -1",
        "cl-neg",
        request("PUT", "/v1/nodes/cl-neg", ["Host: relay", "Content-Length: -1"]),
        [400],
        true,
      ],
      [
        "Content-Length abc",
        "cl-abc",
        request("PUT", "/v1/nodes/cl-abc", ["Host: relay", "Content-Length: abc"]),
        [400],
        true,
      ],
      [
        "Content-Length beyond 64 bits",
        "cl-huge",
        request("PUT", "/v1/nodes/cl-huge", [
          "Host: relay",
          "Content-Length: 99999999999999999999999",
        ]),
        [400, 413],
        true,
      ],
      [
        "two different Content-Lengths",
        "cl-two",
        request("PUT", "/v1/nodes/cl-two", [
          "Host: relay",
          "Content-Length: 1",
          "Content-Length: 2",
        ], "ab"),
        [400],
        true,
      ],
      [
        "Content-Length and Transfer-Encoding",
        "cl-te",
        request("PUT", "/v1/nodes/cl-te", [
          "Host: relay",
          "Content-Length: 3",
          "Transfer-Encoding: chunked",
        ], "abc"),
        [400],
        true,
      ],
      [
        "chunked garbage",
        "te-garbage",
        request(
          "PUT",
          "/v1/nodes/te-garbage",
          ["Host: relay", "Transfer-Encoding: chunked"],
          "ZZZ\r\nhello\r\n",
        ),
        [201, 400],
        true,
      ],
      [
        "chunk size beyond 64 bits",
        "te-huge",
        request(
          "PUT",
          "/v1/nodes/te-huge",
          ["Host: relay", "Transfer-Encoding: chunked"],
          "FFFFFFFFFFFFFFFFFFFF\r\n",
        ),
        [201, 400],
        true,
      ],
      [
        "valid chunked body",
        "te-ok",
        request(
          "PUT",
          "/v1/nodes/te-ok",
          ["Host: relay", "Transfer-Encoding: chunked"],
          "3\r\nabc\r\n0\r\n\r\n",
        ),
        [201],
        // Every framing case half-closes the socket after sending, and Deno's
        // HTTP server cancels a response still pending when it reads that
        // EOF: on a busy machine a dropped answer (never a 5xx) is possible.
        true,
      ],
      [
        "Transfer-Encoding gzip only",
        "te-gzip",
        request("PUT", "/v1/nodes/te-gzip", ["Host: relay", "Transfer-Encoding: gzip"]),
        [400, 501],
        true,
      ],
      [
        "Expect: 100-continue",
        "expect",
        request("PUT", "/v1/nodes/expect", [
          "Host: relay",
          "Expect: 100-continue",
          "Content-Length: 5",
        ]),
        [201, 417],
        true,
      ],
      [
        "header value with NUL",
        "hdr-nul",
        request("PUT", "/v1/nodes/hdr-nul", ["Host: relay", "X-Bad: a\0b"]),
        [400],
        true,
      ],
      [
        "header value with 0x01",
        "hdr-ctl",
        request("PUT", "/v1/nodes/hdr-ctl", ["Host: relay", "X-Bad: a\x01b"]),
        [400],
        true,
      ],
      [
        "non-ASCII header name",
        "hdr-name",
        request("PUT", "/v1/nodes/hdr-name", ["Host: relay", "X-Bé: a"]),
        [400],
        true,
      ],
      [
        "header without a colon",
        "hdr-colon",
        request("PUT", "/v1/nodes/hdr-colon", ["Host: relay", "Broken"]),
        [400],
        true,
      ],
      [
        "space in a header name",
        "hdr-space",
        request("PUT", "/v1/nodes/hdr-space", ["Host: relay", "Bad Name: x"]),
        [400],
        true,
      ],
      [
        "obsolete line folding",
        "hdr-fold",
        request("PUT", "/v1/nodes/hdr-fold", ["Host: relay", "X-Fold: a", " b"]),
        [400, 201],
        true,
      ],
    ];
    for (const [label, fingerprint, text, allowed, closeOk] of framing) {
      const result = await raw(port, text, { closeWrite: true });
      checkRaw(group, label, result, allowed, closeOk);
      const after = await cleanup(group, label, fingerprint);
      if (/^(lying|chunked garbage|chunk size|Expect)/.test(label)) {
        notes.push(
          `${label}: ${firstStatus(result) ?? "no response"} (${result.end}); ` +
            `${after === 204 ? "a lease was granted" : "no lease"}`,
        );
      }
    }
    // A body longer than its Content-Length: the rest is read as the next request.
    const smuggle = await raw(
      port,
      request("PUT", "/v1/nodes/cl-short", ["Host: relay", "Content-Length: 1"], "abcdef"),
      {
        want: 2,
        closeWrite: true,
      },
    );
    // Half-closed too: a dropped answer is possible (see "valid chunked body").
    checkRaw(group, "body longer than Content-Length: first request", smuggle, [201], true);
    const second = smuggle.responses[1]?.status ?? null;
    group.check(
      "body longer than Content-Length: the rest is a bad request or dropped",
      second === null || second === 400,
      describe(smuggle),
    );
    await cleanup(group, "body longer than Content-Length", "cl-short");
    // Send half a body, then drop the socket without reading anything.
    exchange();
    const dropped = await Deno.connect({ hostname: HOSTNAME, port });
    try {
      await writeAll(
        dropped,
        utf8.encode(
          request("PUT", "/v1/nodes/cl-drop", ["Host: relay", "Content-Length: 1000"], "x"),
        ),
      );
    } finally {
      dropped.close();
    }
    group.check("half a body, then close", true);
    await checkHealth(group, server, "framing");
    await cleanup(group, "half a body, then close", "cl-drop");
    group.finish();
  });

  await t.step("HTTP/1.0 and broken HTTP over raw sockets", async () => {
    const group = new Group("protocol");
    const h10 = await raw(port, "GET /v1/health HTTP/1.0\r\n\r\n", { waitForCloseMs: 1000 });
    checkRaw(group, "HTTP/1.0 GET /v1/health", h10, [200]);
    group.check(
      "HTTP/1.0 status line",
      h10.received.startsWith("HTTP/1.0 200") || h10.received.startsWith("HTTP/1.1 200"),
      describe(h10),
    );
    group.eq("HTTP/1.0 without keep-alive: the server closes", h10.end, "eof");
    const keepAlive = await raw(
      port,
      "GET /v1/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /v1/health HTTP/1.0\r\n\r\n",
      { want: 2, waitForCloseMs: 1000 },
    );
    group.eq(
      "HTTP/1.0 keep-alive: two responses on one connection",
      keepAlive.responses.map((r) => r.status),
      [200, 200],
    );
    group.eq(
      "HTTP/1.0 keep-alive, then a plain HTTP/1.0 request: closed after it",
      keepAlive.end,
      "eof",
    );
    const put10 = await raw(port, "PUT /v1/nodes/h10 HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
    if (checkRaw(group, "HTTP/1.0 PUT", put10, [201, 410]) && firstStatus(put10) === 201) {
      granted.add("h10");
    }
    checkRaw(
      group,
      "HTTP/1.0 PUT again",
      await raw(port, "PUT /v1/nodes/h10 HTTP/1.0\r\nContent-Length: 0\r\n\r\n"),
      firstStatus(put10) === 201 ? [202] : [201, 410],
    );
    checkRaw(group, "HTTP/1.0 DELETE", await raw(port, "DELETE /v1/nodes/h10 HTTP/1.0\r\n\r\n"), [
      204,
      404,
    ]);
    await cleanup(group, "HTTP/1.0", "h10");

    const cases: [string, string | Uint8Array, number[], boolean][] = [
      ["request line without a version", "GET /v1/health\r\n\r\n", [400], true],
      ["request line without a target", "GET HTTP/1.1\r\nHost: relay\r\n\r\n", [400], true],
      ["relative target", "GET v1/health HTTP/1.1\r\nHost: relay\r\n\r\n", [400], true],
      [
        "two spaces after the method",
        "GET  /v1/health HTTP/1.1\r\nHost: relay\r\n\r\n",
        [400],
        true,
      ],
      ["lower-case http/1.1", "GET /v1/health http/1.1\r\nHost: relay\r\n\r\n", [400], true],
      ["HTTP/1.2", "GET /v1/health HTTP/1.2\r\nHost: relay\r\n\r\n", [400, 505], true],
      ["HTTP/2.0 as text", "GET /v1/health HTTP/2.0\r\nHost: relay\r\n\r\n", [400, 505], true],
      ["HTTP/9.9", "GET /v1/health HTTP/9.9\r\nHost: relay\r\n\r\n", [400, 505], true],
      ["binary garbage", bytes([0, 1, 2, 0xff, 0xfe, 0x80, 13, 10, 13, 10]), [400], true],
      [
        "1 kB of pseudo-random bytes",
        bytes(Array.from({ length: 1024 }, (_, i) => (i * 7919 + 13) % 256), "\r\n\r\n"),
        [400],
        true,
      ],
      [
        "TLS ClientHello on plain HTTP",
        bytes(
          [0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03],
          new Array(32).fill(0),
        ),
        [400],
        true,
      ],
      ["LF-only line endings", "GET /v1/health HTTP/1.1\nHost: relay\n\n", [200, 400], true],
      ["HTTP/1.1 without Host", "GET /v1/health HTTP/1.1\r\n\r\n", [200, 400], false],
      ["empty Host", "GET /v1/health HTTP/1.1\r\nHost:\r\n\r\n", [200, 400], false],
      ["two Host headers", "GET /v1/health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", [400], true],
      [
        "Host with user info",
        "GET /v1/health HTTP/1.1\r\nHost: user@relay\r\n\r\n",
        [200, 400],
        false,
      ],
      ["Host as IPv6 literal", "GET /v1/health HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", [200], false],
      ["300-character Host", `GET /v1/health HTTP/1.1\r\nHost: ${"h".repeat(300)}\r\n\r\n`, [
        200,
        400,
      ], false],
      ["Host with a control byte", bytes("GET /v1/health HTTP/1.1\r\nHost: a", [1], "b\r\n\r\n"), [
        400,
      ], true],
      ["absolute-form target", "GET http://elsewhere/v1/health HTTP/1.1\r\nHost: relay\r\n\r\n", [
        200,
      ], false],
      [
        "absolute-form target with a space",
        "GET http://a b/v1/health HTTP/1.1\r\nHost: relay\r\n\r\n",
        [400],
        true,
      ],
      ["OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: relay\r\n\r\n", [200, 204, 400, 404, 405], false],
      [
        "Upgrade: websocket on /v1/health",
        "GET /v1/health HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        [200, 400, 426],
        false,
      ],
      [
        "Upgrade: h2c",
        "GET /v1/health HTTP/1.1\r\nHost: relay\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
        [200, 400],
        false,
      ],
    ];
    for (const [label, data, allowed, closeOk] of cases) {
      checkRaw(group, label, await raw(port, data), allowed, closeOk);
    }
    const noHost = await raw(port, "GET /v1/health HTTP/1.1\r\n\r\n");
    notes.push(`HTTP/1.1 without Host: ${firstStatus(noHost)} (RFC 9112 asks for 400)`);

    const pipelined = await raw(
      port,
      request("GET", "/v1/health") + request("PUT", "/v1/nodes/..") + request("GET", "/v1/health"),
      { want: 3 },
    );
    group.eq("three pipelined requests", pipelined.responses.map((r) => r.status), [200, 404, 200]);

    const preface = await raw(port, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {
      until: (received) => received.length >= 9 || received.startsWith("HTTP/1"),
    });
    // HTTP/2 with prior knowledge: a SETTINGS frame (type 4), or an HTTP/1 refusal.
    const isSettings = preface.received.length >= 9 && preface.received.charCodeAt(3) === 4;
    group.check(
      "HTTP/2 prior-knowledge preface: SETTINGS frame or a 4xx",
      isSettings || (firstStatus(preface) ?? 0) >= 400 && (firstStatus(preface) ?? 0) < 500,
      describe(preface),
    );
    if (isSettings) {
      notes.push(
        "HTTP/2 prior-knowledge preface over plain TCP: the server speaks h2c (answers SETTINGS)",
      );
    }

    // Slowloris-lite: one byte at a time, ~1 s in all.
    const slow = async (text: string, label: string, allowed: number[]) => {
      exchange();
      const conn = await Deno.connect({ hostname: HOSTNAME, port });
      try {
        const data = utf8.encode(text);
        const began = performance.now();
        for (let i = 0; i < data.length && performance.now() - began < 2_000; i++) {
          await writeAll(conn, data.subarray(i, i + 1));
          await new Promise((resolve) =>
            setTimeout(resolve, Math.max(1, Math.floor(1_000 / data.length)))
          );
        }
        const result = await readReplies(conn, {});
        checkRaw(group, label, result, allowed);
        return firstStatus(result);
      } finally {
        conn.close();
      }
    };
    await slow(request("GET", "/v1/health"), "GET /v1/health one byte at a time", [200]);
    if (
      (await slow(
        request("PUT", "/v1/nodes/slow", ["Host: relay", "Content-Length: 0"]),
        "PUT one byte at a time",
        [201],
      )) === 201
    ) {
      granted.add("slow");
    }
    checkRaw(
      group,
      "DELETE after the slow PUT",
      await raw(port, request("DELETE", "/v1/nodes/slow")),
      [204],
    );
    await checkHealth(group, server, "protocol");
    group.finish();
  });

  await t.step("malformed Host headers: 400, never 500, never re-routed", async () => {
    const group = new Group("host header");
    // The request-target names the route; a Host value must not change it or crash the handler.
    const hosts = [
      "a b",
      "%",
      "[::1",
      "relay:99999",
      "relay:abc",
      "a|b",
      "<relay>",
      "a^b",
      "a/b",
      "a?b",
      "a#b",
      "a\\b",
    ];
    for (const host of hosts) {
      const result = await raw(port, request("GET", "/v1/health", [`Host: ${host}`]));
      checkRaw(group, `GET /v1/health with Host: ${host}`, result, [200, 400]);
    }
    const injected = await raw(port, request("GET", "/nope", ["Host: relay/v1/health#"]));
    checkRaw(group, "GET /nope with Host: relay/v1/health# (re-routing)", injected, [400, 404]);
    const claimed = await raw(
      port,
      request("PUT", "/nope", ["Host: relay/v1/nodes/host-injected?", "Content-Length: 0"]),
    );
    checkRaw(group, "PUT /nope with Host: relay/v1/nodes/host-injected? (re-routing)", claimed, [
      400,
      404,
    ]);
    await cleanup(group, "Host re-routing", "host-injected");
    await checkHealth(group, server, "malformed Host headers");
    group.finish();
  });

  await t.step("200 idle connections while 50 clients claim, heartbeat and release", async () => {
    const group = new Group("idle connections");
    const free = query<{ n: number }>(
      db,
      "SELECT count(*) AS n FROM licenses WHERE pool_id IS NULL AND node_id IS NULL",
    )[0].n;
    group.eq("every unpooled license is free again", free, unpooled.length);
    const idle: Deno.Conn[] = [];
    try {
      for (let i = 0; i < 200; i++) {
        const conn = await Deno.connect({ hostname: HOSTNAME, port });
        idle.push(conn);
        // Half of them send half a request line.
        if (i % 2 === 1) await writeAll(conn, utf8.encode("GET /v1/hea"));
      }
      group.check("200 idle connections open", idle.length === 200);
      await checkHealth(group, server, "opening 200 idle connections");

      const clients = Array.from({ length: 50 }, async (_, i) => {
        const path = `/v1/nodes/idle-${i}`;
        const steps: [string, number][] = [];
        let slowest = 0;
        for (const method of ["PUT", "PUT", "DELETE"]) {
          const reply = await send(base, method, path);
          steps.push([method, reply.status]);
          slowest = Math.max(slowest, reply.ms);
        }
        return { i, steps, slowest };
      });
      const results = await Promise.all(clients);
      const expectedGrants = Math.min(50, free);
      let grants = 0;
      for (const { i, steps, slowest } of results) {
        const statuses = steps.map(([, status]) => status);
        for (const status of statuses) {
          if (status >= 500) serverErrors.push(`idle client ${i}: ${status}`);
        }
        if (statuses[0] === 201) {
          grants++;
          granted.add(`idle-${i}`);
          group.eq(`client ${i}: claim, heartbeat, release`, statuses, [201, 202, 204]);
        } else {
          group.eq(`client ${i}: no license free`, statuses, [410, 410, 404]);
        }
        group.check(
          `client ${i}: each request within 5 s`,
          slowest < 5_000,
          `${Math.round(slowest)} ms`,
        );
      }
      group.eq("clients that got a license", grants, expectedGrants);
      const raw200 = await raw(port, request("GET", "/v1/health"));
      checkRaw(group, "raw GET /v1/health while idle connections are open", raw200, [200]);
      await checkHealth(group, server, "50 clients beside 200 idle connections");
    } finally {
      for (const conn of idle) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
    }
    await checkHealth(group, server, "closing the idle connections");
    group.finish();
  });

  await t.step("the database: every license kept, every stored fingerprint exactly as sent", () => {
    const group = new Group("database");
    group.eq(
      "licenses intact",
      query<{ key: string }>(db, "SELECT key FROM licenses ORDER BY key").map((row) => row.key),
      allKeys,
    );
    group.eq(
      "no lease left behind",
      query<{ n: number }>(db, "SELECT count(*) AS n FROM licenses WHERE node_id IS NOT NULL")[0].n,
      0,
    );
    const stored = query<{ fingerprint: string }>(db, "SELECT fingerprint FROM nodes").map((row) =>
      row.fingerprint
    );
    group.eq("no fingerprint stored twice", stored.length, new Set(stored).size);
    group.eq(
      "the stored fingerprints are exactly the granted ones",
      [...stored].sort(),
      [...granted].sort(),
    );
    group.finish();
  });

  await t.step("no 5xx anywhere, and a clean SIGTERM", async () => {
    const group = new Group("shutdown");
    group.eq("no 5xx answers", serverErrors, []);
    await checkHealth(group, server, "everything");
    const { status, stdout, stderr } = await server.stop("SIGTERM");
    group.eq("relay exits 0 on SIGTERM", status.code, 0);
    const errors = stdout.split("\n").filter((line) => line.includes(`"level":"error"`));
    group.eq("no error logged on stdout", errors, []);
    // An exception escaping the handler is printed by Deno.serve on stderr.
    group.eq(
      "nothing on stderr",
      stderr.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("    at ")),
      [],
    );
    group.finish();
  });

  await t.step("case count", () => {
    const total = [...counts.values()].reduce((sum, n) => sum + n, 0);
    const sent = [...exchanges.values()].reduce((sum, n) => sum + n, 0);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `bad input: ${total} checks over ${sent} HTTP exchanges in ${seconds} s; ` +
        "by group (checks/exchanges): " +
        [...counts].map(([group, n]) => `${group} ${n}/${exchanges.get(group) ?? 0}`).join(", ") +
        (notes.length ? `\n  ${notes.join("\n  ")}` : ""),
    );
    assert.ok(total >= 150, `at least 150 checks, got ${total}`);
    assert.ok(sent >= 150, `at least 150 exchanges, got ${sent}`);
    for (
      const group of [
        "fingerprints",
        "pool header",
        "methods",
        "headers and bodies",
        "protocol",
        "idle connections",
      ]
    ) {
      assert.ok((counts.get(group) ?? 0) >= 10, `group ${group}: ${counts.get(group)} cases`);
    }
  });
});
