/**
 * `ConnectionPool` on a clock the test moves: real sockets served by Deno's
 * HTTP engine (`denoEngine()`), so the header and idle timeouts, which
 * connection makes room at the cap, and shutdown are checked to the
 * millisecond without waiting for them on the real clock.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createLogger, VERBOSITY } from "../../lib/logger.ts";
import { ConnectionPool, FLUSH_MS } from "../../server/connection_pool.ts";
import { denoEngine } from "../../server/listener.ts";
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
const CLOSE_WITHIN_MS = 10_000;

/** A pool on a listener of its own, with a clock at `now`, and its debug log. */
function harness(
  options: { maxConnections?: number; headerTimeoutMs?: number; idleTimeoutMs?: number } = {},
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    verbosity: VERBOSITY.debug,
    json: true,
    write: (line) => lines.push(JSON.parse(line)),
    now: () => new Date(),
  });
  /** Requests wait here while `gate` is set. */
  let gate: Promise<void> | null = null;
  const state = { now: 0 };
  /** Requests that reached the handler, and a wake-up for whoever waits for more. */
  let entered = 0;
  let enteredMore = Promise.withResolvers<void>();
  const pool = new ConnectionPool({
    maxConnections: options.maxConnections ?? 100,
    headerTimeoutMs: options.headerTimeoutMs ?? 60_000,
    idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
    handler: async (req) => {
      entered++;
      enteredMore.resolve();
      enteredMore = Promise.withResolvers();
      if (gate) await gate;
      return new Response(`answered ${new URL(req.url).pathname}`);
    },
    serve: denoEngine(logger),
    logger,
    clock: () => state.now,
  });
  const clients: Deno.Conn[] = [];
  return {
    pool,
    state,
    /** Connects a client and hands the accepted connection to the pool. */
    async open(): Promise<Deno.Conn> {
      const client = await connect(port);
      clients.push(client);
      pool.add(await listener.accept());
      return client;
    },
    /** Holds requests in the handler until the returned function is called. */
    hold(): () => void {
      const { promise, resolve } = Promise.withResolvers<void>();
      gate = promise;
      return () => {
        gate = null;
        resolve();
      };
    },
    /** Resolves once `count` requests in all have reached the handler. */
    async entered(count: number): Promise<void> {
      while (entered < count) await enteredMore.promise;
    },
    /** The reasons of the "closing connection" lines so far. */
    closes: () => lines.filter((line) => line.msg === "closing connection").map((l) => l.reason),
    async [Symbol.asyncDispose]() {
      await pool.closeAll();
      listener.close();
      for (const client of clients) closeQuietly(client);
    },
  };
}

/** Sends a whole request and reads its answer. */
async function roundTrip(client: Deno.Conn, path: string): Promise<string> {
  await send(client, request("GET", path));
  const response = await readResponse(client);
  assert.equal(response.status, 200);
  return response.body;
}

/** Lets the pool's timers and the engine's I/O run once. */
function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

const closed = (client: Deno.Conn) =>
  closedByServer(client, { since: performance.now(), withinMs: CLOSE_WITHIN_MS });

Deno.test("ConnectionPool closes a connection without a whole request at the header timeout, not before", async () => {
  await using h = harness({ headerTimeoutMs: 500, idleTimeoutMs: 5_000 });
  const silent = await h.open();
  const halfSent = await h.open();
  await send(halfSent, requestHead("PUT", "/v1/nodes/slow"));
  h.state.now = 499;
  h.pool.sweep();
  await tick();
  assert.deepEqual(h.closes(), []);
  assert.equal(h.pool.size, 2);

  h.state.now = 500;
  h.pool.sweep();
  await closed(silent);
  await closed(halfSent);
  assert.deepEqual(h.closes(), ["header timeout", "header timeout"]);
  // Closed connections leave the pool.
  while (h.pool.size > 0) await h.pool.closed();
});

Deno.test("ConnectionPool closes a kept-alive connection an idle timeout after its last answer", async () => {
  await using h = harness({ headerTimeoutMs: 100, idleTimeoutMs: 1_000 });
  const client = await h.open();
  assert.equal(await roundTrip(client, "/first"), "answered /first");
  h.state.now = 600;
  // The header timeout no longer applies; the connection is reused.
  h.pool.sweep();
  assert.equal(await roundTrip(client, "/second"), "answered /second");
  h.state.now = 1_599;
  h.pool.sweep();
  await tick();
  assert.deepEqual(h.closes(), []);
  assert.equal(await roundTrip(client, "/third"), "answered /third");

  h.state.now = 2_599;
  h.pool.sweep();
  await closed(client);
  assert.deepEqual(h.closes(), ["idle timeout"]);
});

Deno.test("ConnectionPool never closes a connection while its request is in the handler", async () => {
  await using h = harness({ headerTimeoutMs: 100, idleTimeoutMs: 200 });
  const client = await h.open();
  const release = h.hold();
  await send(client, request("PUT", "/v1/nodes/busy"));
  await h.entered(1);
  h.state.now = 60_000;
  h.pool.sweep();
  await tick();
  assert.deepEqual(h.closes(), []);
  release();
  const response = await readResponse(client);
  assert.deepEqual([response.status, response.body], [200, "answered /v1/nodes/busy"]);
  // The idle time counts from the answer.
  h.state.now = 60_199;
  h.pool.sweep();
  await tick();
  assert.deepEqual(h.closes(), []);
  h.state.now = 60_200;
  h.pool.sweep();
  await closed(client);
  assert.deepEqual(h.closes(), ["idle timeout"]);
});

Deno.test("ConnectionPool makes room at the cap by closing the longest idle connection, unanswered ones first", async (t) => {
  await using h = harness({ maxConnections: 3 });
  const answered = await h.open();
  assert.equal(await roundTrip(answered, "/a"), "answered /a");
  h.state.now = 10;
  const older = await h.open();
  h.state.now = 20;
  const newer = await h.open();
  h.state.now = 1_000;

  await t.step("the oldest that never completed a request goes first", async () => {
    await h.pool.makeRoom();
    await closed(older);
    assert.deepEqual(h.closes(), ["making room"]);
    assert.equal(h.pool.size, 2);
  });

  await t.step("room is made only when the pool is full", async () => {
    await h.pool.makeRoom();
    assert.deepEqual(h.closes(), ["making room"]);
  });

  await t.step("then the next unanswered one, before the older answered one", async () => {
    await h.open();
    await h.pool.makeRoom();
    await closed(newer);
    assert.deepEqual(h.closes(), ["making room", "making room"]);
    assert.equal(await roundTrip(answered, "/a-again"), "answered /a-again");
  });
});

Deno.test("ConnectionPool makes room only with connections not busy with a request", async (t) => {
  await using h = harness({ maxConnections: 2 });
  const first = await h.open();
  const second = await h.open();
  const release = h.hold();
  await send(first, request("PUT", "/v1/nodes/one"));
  await send(second, request("PUT", "/v1/nodes/two"));
  await h.entered(2);
  let roomMade = false;
  const room = h.pool.makeRoom().then(() => (roomMade = true));

  await t.step("while both requests are in the handler, nothing is closed", async () => {
    await tick();
    assert.equal(roomMade, false);
    assert.deepEqual(h.closes(), []);
  });

  await t.step(`a connection answered less than ${FLUSH_MS} ms ago is not closed`, async () => {
    release();
    assert.equal((await readResponse(first)).body, "answered /v1/nodes/one");
    assert.equal((await readResponse(second)).body, "answered /v1/nodes/two");
    await tick();
    assert.equal(roomMade, false);
    assert.deepEqual(h.closes(), []);
  });

  await t.step("once its answer is out, it makes room", async () => {
    h.state.now = FLUSH_MS;
    await room;
    assert.deepEqual(h.closes(), ["making room"]);
    await closed(first);
    assert.equal(await roundTrip(second, "/still-open"), "answered /still-open");
  });
});

Deno.test("ConnectionPool.closeAll() answers the requests in flight and closes every connection", async () => {
  await using h = harness();
  const busy = await h.open();
  const idle = await h.open();
  assert.equal(await roundTrip(idle, "/idle"), "answered /idle");
  const silent = await h.open();
  const release = h.hold();
  await send(busy, request("PUT", "/v1/nodes/busy"));
  await h.entered(2);
  h.state.now = 1_000;

  let allClosed = false;
  const closing = h.pool.closeAll().then(() => (allClosed = true));
  await closed(idle);
  await closed(silent);
  assert.equal(allClosed, false);
  release();
  const response = await readResponse(busy);
  assert.deepEqual([response.status, response.body], [200, "answered /v1/nodes/busy"]);
  await closed(busy);
  await closing;
  assert.equal(h.pool.size, 0);
});
