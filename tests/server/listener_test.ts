/**
 * `serveConnections()` on the real clock: timeouts as a client sees them,
 * the cap, shutdown, HTTPS with ALPN, and listen errors. Each waits for what
 * the server does (a close, an answer), never for a fixed time.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createLogger, VERBOSITY } from "../../lib/logger.ts";
import { type ConnectionServer, serveConnections } from "../../server/listener.ts";
import { tempDir } from "../helpers.ts";
import { makeCertificates } from "./http_support.ts";
import {
  closedByServer,
  closeQuietly,
  connect,
  readResponse,
  request,
  requestHead,
  send,
} from "./raw_connections.ts";

/** Long enough for a close to reach the client on a loaded machine. */
const WITHIN_MS = 10_000;

/** A server on a free loopback port, answering `answered <path>`; disposed by shutdown. */
function start(
  options: {
    maxConnections?: number;
    headerTimeoutMs?: number;
    idleTimeoutMs?: number;
    tls?: { cert: string; key: string };
    handler?: (request: Request) => Promise<Response>;
  } = {},
): ConnectionServer & AsyncDisposable & { port: number; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const server = serveConnections(
    {
      hostname: "127.0.0.1",
      port: 0,
      tls: options.tls ?? null,
      maxConnections: options.maxConnections ?? 100,
      headerTimeoutMs: options.headerTimeoutMs ?? 60_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
      logger: createLogger({
        verbosity: VERBOSITY.debug,
        json: true,
        write: (line) => lines.push(JSON.parse(line)),
        now: () => new Date(),
      }),
    },
    options.handler ??
      ((req) => Promise.resolve(new Response(`answered ${new URL(req.url).pathname}`))),
  );
  return Object.assign(server, {
    port: server.addr.port,
    lines,
    [Symbol.asyncDispose]: () => server.shutdown(),
  });
}

Deno.test("serveConnections() closes connections without a whole request after the header timeout", async (t) => {
  await using server = start({ headerTimeoutMs: 300, idleTimeoutMs: 60_000 });

  await t.step("one that sends nothing", async () => {
    const since = performance.now();
    const conn = await connect(server.port);
    const elapsed = await closedByServer(conn, { since, withinMs: WITHIN_MS });
    closeQuietly(conn);
    assert.ok(elapsed >= 300, `closed after ${elapsed} ms`);
  });

  await t.step("one that sends half its headers", async () => {
    const since = performance.now();
    const conn = await connect(server.port);
    await send(conn, requestHead("PUT", "/v1/nodes/slow"));
    const elapsed = await closedByServer(conn, { since, withinMs: WITHIN_MS });
    closeQuietly(conn);
    assert.ok(elapsed >= 300, `closed after ${elapsed} ms`);
  });

  await t.step("one that sends its headers a byte at a time, slower than the timeout", async () => {
    const since = performance.now();
    const conn = await connect(server.port);
    const closed = closedByServer(conn, { since, withinMs: WITHIN_MS });
    // Trickle until the server hangs up; each byte comes well within the timeout.
    for (const byte of request("PUT", "/v1/nodes/trickle").repeat(20)) {
      try {
        await send(conn, byte);
      } catch {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (performance.now() - since > WITHIN_MS) break;
    }
    const elapsed = await closed;
    closeQuietly(conn);
    assert.ok(elapsed >= 300 && elapsed < WITHIN_MS, `closed after ${elapsed} ms`);
  });

  await t.step(
    "the server answers a prompt client meanwhile, and counts no dead connection",
    async () => {
      const conn = await connect(server.port);
      await send(conn, request("GET", "/v1/health"));
      assert.deepEqual(
        await readResponse(conn).then((r) => [r.status, r.body]),
        [200, "answered /v1/health"],
      );
      closeQuietly(conn);
      assert.deepEqual(
        server.lines.filter((line) => line.msg === "closing connection").map((line) => line.reason),
        ["header timeout", "header timeout", "header timeout"],
      );
    },
  );
});

Deno.test("serveConnections() closes a kept-alive connection after the idle timeout, counted from its last request", async () => {
  await using server = start({ headerTimeoutMs: 100, idleTimeoutMs: 500 });
  const conn = await connect(server.port);
  for (const path of ["/first", "/second", "/third"]) {
    await send(conn, request("PUT", path));
    const response = await readResponse(conn);
    assert.deepEqual([response.status, response.body], [200, `answered ${path}`]);
  }
  const since = performance.now();
  await send(conn, request("PUT", "/last"));
  assert.equal((await readResponse(conn)).body, "answered /last");
  const elapsed = await closedByServer(conn, { since, withinMs: WITHIN_MS });
  closeQuietly(conn);
  assert.ok(elapsed >= 500, `closed after ${elapsed} ms`);
  assert.ok(
    server.lines.some((line) =>
      line.msg === "closing connection" && line.reason === "idle timeout"
    ),
  );
});

Deno.test("serveConnections() at the cap serves a new client at once, closing the oldest idle connection", async () => {
  await using server = start({ maxConnections: 2 });
  const oldest = await connect(server.port);
  const newer = await connect(server.port);
  await send(newer, requestHead("GET", "/v1/health"));
  // Both are accepted before the next client is: wait until the server holds them.
  while (server.connections < 2) await new Promise((resolve) => setTimeout(resolve, 5));

  const response = await fetch(`http://127.0.0.1:${server.port}/v1/nodes/new`, { method: "PUT" });
  assert.deepEqual([response.status, await response.text()], [200, "answered /v1/nodes/new"]);
  await closedByServer(oldest, { since: performance.now(), withinMs: WITHIN_MS });
  closeQuietly(oldest);
  // The newer one is still served.
  await send(newer, "\r\n");
  assert.equal((await readResponse(newer)).body, "answered /v1/health");
  closeQuietly(newer);
  assert.ok(server.connections <= 2, `${server.connections} connections`);
});

Deno.test("serveConnections().shutdown() answers the request in flight and closes the rest", async () => {
  const { promise: release, resolve } = Promise.withResolvers<void>();
  const { promise: inHandler, resolve: entered } = Promise.withResolvers<void>();
  const server = start({
    handler: async () => {
      entered();
      await release;
      return new Response("late answer");
    },
  });
  const idle = await connect(server.port);
  const busy = await connect(server.port);
  await send(busy, request("PUT", "/v1/nodes/busy"));
  await inHandler;

  let stopped = false;
  const stopping = server.shutdown().then(() => (stopped = true));
  await closedByServer(idle, { since: performance.now(), withinMs: WITHIN_MS });
  closeQuietly(idle);
  assert.equal(stopped, false);
  // The listener is closed: nothing new is accepted.
  await assert.rejects(connect(server.port));
  resolve();
  const response = await readResponse(busy);
  assert.deepEqual([response.status, response.body], [200, "late answer"]);
  await closedByServer(busy, { since: performance.now(), withinMs: WITHIN_MS });
  closeQuietly(busy);
  await stopping;
  assert.equal(server.connections, 0);
});

Deno.test("serveConnections() throws listen errors at once, as Deno.serve does", () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const options = {
    hostname: "127.0.0.1",
    port: (taken.addr as Deno.NetAddr).port,
    tls: null,
    maxConnections: 10,
    headerTimeoutMs: 1_000,
    idleTimeoutMs: 1_000,
    logger: createLogger({ verbosity: 0, json: true, write: () => {}, now: () => new Date() }),
  };
  assert.throws(() => serveConnections(options, () => new Response()), Deno.errors.AddrInUse);
});

Deno.test("serveConnections() over TLS offers HTTP/2 and HTTP/1.1, as Deno.serve does", async (t) => {
  await using dir = await tempDir();
  const { ca, cert, key } = await certificates(dir.path);
  await using server = start({ tls: { cert, key } });

  for (const protocol of ["h2", "http/1.1"]) {
    await t.step(`${protocol} is negotiated`, async () => {
      const conn = await Deno.connectTls({
        hostname: "127.0.0.1",
        port: server.port,
        caCerts: [ca],
        alpnProtocols: [protocol],
      });
      const handshake = await conn.handshake();
      assert.equal(handshake.alpnProtocol, protocol);
      conn.close();
    });
  }

  await t.step("a client that verifies the certificate gets the answer", async () => {
    using client = Deno.createHttpClient({ caCerts: [ca] });
    const response = await fetch(`https://127.0.0.1:${server.port}/v1/nodes/tls`, {
      method: "PUT",
      client,
    });
    assert.deepEqual([response.status, await response.text()], [200, "answered /v1/nodes/tls"]);
  });
});

/** A throwaway CA, and a certificate for 127.0.0.1 it signed (PEM text). */
async function certificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const paths = await makeCertificates(dir);
  return {
    ca: await Deno.readTextFile(paths.ca),
    cert: await Deno.readTextFile(paths.cert),
    key: await Deno.readTextFile(paths.key),
  };
}
