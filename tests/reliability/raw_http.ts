/**
 * HTTP/1.x over raw sockets, for requests that `fetch` refuses or rewrites:
 * any bytes out, every complete response parsed back, and how the exchange
 * ended (done, EOF, reset or timeout). Every read races a timer and every
 * loop is bounded, so a server that hangs fails the check instead of the
 * test. Only loopback: `Deno.connect` to 127.0.0.1.
 *
 * @module
 */

/** Where the server under test listens. */
export const HOSTNAME = "127.0.0.1";
/** The longest any single raw read may wait. */
export const READ_TIMEOUT_MS = 3_000;

/** UTF-8 encoder for request text. */
export const utf8 = new TextEncoder();

/** Bytes from strings (UTF-8) and byte arrays, concatenated. */
export function bytes(...parts: (string | number[] | Uint8Array)[]): Uint8Array {
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
export function latin1(data: Uint8Array): string {
  let text = "";
  for (let i = 0; i < data.length; i += 8192) {
    text += String.fromCharCode(...data.subarray(i, i + 8192));
  }
  return text;
}

/** One complete response received over a raw socket. */
export interface RawResponse {
  status: number;
  /** The status line and headers, without the blank line. */
  head: string;
  /** The body, as code units 0–255. */
  body: string;
}

/** What a raw exchange brought back. */
export interface RawResult {
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
export function parseResponses(
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

/** Writes all of `data` (bounded: a write that keeps returning 0 gives up). */
export async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let written = 0;
  for (let guard = 0; written < data.length && guard < 100_000; guard++) {
    written += await conn.write(data.subarray(written));
  }
}

/** A read that cannot hang: resolves with the byte count, null at EOF, an error, or "timeout". */
export async function timedRead(
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

/** How long to read, and what to wait for. */
export interface RawOptions {
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
export async function readReplies(
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
export async function raw(
  port: number,
  data: string | Uint8Array,
  options: RawOptions = {},
): Promise<RawResult> {
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
export function request(
  method: string,
  target: string,
  headers: string[] = ["Host: relay"],
  body = "",
): string {
  return `${method} ${target} HTTP/1.1\r\n${headers.map((h) => `${h}\r\n`).join("")}\r\n${body}`;
}

/** The status of the first final response, or null when none came. */
export function firstStatus(result: RawResult): number | null {
  return result.responses[0]?.status ?? null;
}

/** Describes a raw result for failure messages. */
export function describe(result: RawResult): string {
  return `end=${result.end} statuses=${result.responses.map((r) => r.status).join(",") || "none"}` +
    (result.writeError ? ` writeError=${result.writeError}` : "") +
    ` received=${JSON.stringify(result.received.slice(0, 120))}`;
}
