/**
 * Raw TCP clients for the connection tests: HTTP/1.1 written by hand, so a
 * test controls exactly what a connection sends, when, and whether it stays
 * open; and a check that the server closed one.
 *
 * @module
 */

/** One HTTP/1.1 response read off a raw connection. */
export interface RawResponse {
  status: number;
  headers: Headers;
  body: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Opens a TCP connection to `127.0.0.1:port`. */
export function connect(port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

/** Writes all of `text`. */
export async function send(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/** The head of a request without its final blank line: half-sent headers. */
export function requestHead(method: string, path: string): string {
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
}

/** A whole request without a body, on a kept-alive connection. */
export function request(method: string, path: string): string {
  return `${requestHead(method, path)}\r\n`;
}

/**
 * Reads one response with a `Content-Length` (or none: an empty body).
 *
 * @throws {Error} the connection ends first.
 */
export async function readResponse(conn: Deno.Conn): Promise<RawResponse> {
  let buffered = new Uint8Array(0);
  const more = async () => {
    const chunk = new Uint8Array(16 * 1024);
    const n = await conn.read(chunk);
    if (n === null) throw new Error(`The connection ended after ${buffered.length} bytes`);
    const next = new Uint8Array(buffered.length + n);
    next.set(buffered);
    next.set(chunk.subarray(0, n), buffered.length);
    buffered = next;
  };
  let end: number;
  while ((end = decoder.decode(buffered).indexOf("\r\n\r\n")) < 0) await more();
  const [statusLine, ...lines] = decoder.decode(buffered).slice(0, end).split("\r\n");
  const headers = new Headers(lines.map((line) => {
    const colon = line.indexOf(":");
    return [line.slice(0, colon).trim(), line.slice(colon + 1).trim()] as [string, string];
  }));
  const length = Number(headers.get("content-length") ?? 0);
  const bodyStart = encoder.encode(decoder.decode(buffered).slice(0, end + 4)).length;
  while (buffered.length < bodyStart + length) await more();
  return {
    status: Number(statusLine.split(" ")[1]),
    headers,
    body: decoder.decode(buffered.subarray(bodyStart, bodyStart + length)),
  };
}

/**
 * Resolves with the milliseconds until the server closed `conn` (end of
 * stream or reset), counted from `since` (`performance.now()`); rejects when
 * it is still open after `withinMs`. Bytes that arrive meanwhile are ignored.
 */
export async function closedByServer(
  conn: Deno.Conn,
  { since, withinMs }: { since: number; withinMs: number },
): Promise<number> {
  const chunk = new Uint8Array(4096);
  const deadline = setTimeout(
    () => conn.close(),
    Math.max(0, since + withinMs - performance.now()),
  );
  try {
    for (;;) {
      if (await conn.read(chunk) === null) return performance.now() - since;
    }
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionReset) return performance.now() - since;
    throw new Error(`The server did not close the connection within ${withinMs} ms`, {
      cause: error,
    });
  } finally {
    clearTimeout(deadline);
  }
}

/** Closes `conn` unless it is closed already. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Closed already.
  }
}
