/**
 * Connection floods against a real `relay serve` process whose open-file
 * limit is low (`ulimit -n` in `sh`): floods of connections that send
 * nothing and of connections that send half their headers, each larger than
 * the limit. The server must keep running, answer a new client's claim
 * promptly during and after each flood, close the flood's connections itself
 * (by the timeouts, or to make room), log running out of descriptors once
 * per flood, and close idle kept-alive connections after `--idle-timeout`.
 *
 * Loopback only; every loop and wait is bounded.
 *
 * @module
 */

import assert from "node:assert/strict";
import { RELAY_PERMISSIONS } from "../../scripts/permissions.ts";
import { addMinted, childEnv, MAIN, tempDir } from "../helpers.ts";
import {
  assertJson,
  createdBody,
  extendedBody,
  relayClock,
  type Reply,
} from "../server/http_support.ts";
import {
  closedByServer,
  closeQuietly,
  connect,
  readResponse,
  request,
  requestHead,
  send,
} from "../server/raw_connections.ts";

/** The server's open-file limit: about 36 are in use before any client connects. */
const FILE_LIMIT = 256;
/** Connections per flood: well past the limit. */
const FLOOD = 400;
const HEADER_TIMEOUT_MS = 5_000;
const IDLE_TIMEOUT_MS = 2_000;
/** How soon a new client must be answered during a flood: before any timeout frees a place. */
const PROMPT_MS = 4_000;
const TTL = 60;

/** A spawned `relay serve` under `ulimit -n`, its JSON log lines so far, and its port. */
interface LimitedServer extends AsyncDisposable {
  port: number;
  lines: Record<string, unknown>[];
  /** Resolves once a log line with this `msg` has appeared `count` times in all. */
  logged(msg: string, count: number): Promise<void>;
  /** SIGTERM, then the exit code and everything written to stderr. */
  stop(): Promise<{ code: number; stderr: string }>;
}

async function startLimited(cwd: string): Promise<LimitedServer> {
  const process = new Deno.Command("sh", {
    args: [
      "-c",
      `ulimit -n ${FILE_LIMIT} && exec "$@"`,
      "sh",
      Deno.execPath(),
      "run",
      "--quiet",
      ...RELAY_PERMISSIONS,
      MAIN,
      "serve",
      "--bind",
      "127.0.0.1",
      "--port",
      "0",
      "--ttl",
      `${TTL}s`,
      "--header-timeout",
      `${HEADER_TIMEOUT_MS}ms`,
      "--idle-timeout",
      `${IDLE_TIMEOUT_MS}ms`,
    ],
    cwd,
    env: childEnv(),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: Record<string, unknown>[] = [];
  let newLine = Promise.withResolvers<void>();
  const stderr = new Response(process.stderr).text();
  const pump = (async () => {
    let buffer = "";
    for await (const text of process.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += text;
      for (let end; (end = buffer.indexOf("\n")) >= 0; buffer = buffer.slice(end + 1)) {
        lines.push(JSON.parse(buffer.slice(0, end)));
        newLine.resolve();
        newLine = Promise.withResolvers();
      }
    }
    newLine.resolve();
  })();
  const count = (msg: string) => lines.filter((line) => line.msg === msg).length;
  let exited = false;
  const status = process.status.then((status) => {
    exited = true;
    return status;
  });
  const logged = async (msg: string, times: number) => {
    const deadline = Date.now() + 30_000;
    while (count(msg) < times) {
      if (exited) assert.fail(`relay exited before logging "${msg}": ${await stderr}`);
      assert.ok(Date.now() < deadline, `no "${msg}" line ${times} time(s) within 30 s`);
      await Promise.race([newLine.promise, status, new Promise((r) => setTimeout(r, 100))]);
    }
  };
  await logged("relay listening", 1);
  let stopped: Promise<{ code: number; stderr: string }> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      if (!exited) process.kill("SIGTERM");
      const { code } = await status;
      await pump;
      return { code, stderr: await stderr };
    })();
  return {
    port: Number(lines[0].port),
    lines,
    logged,
    stop,
    [Symbol.asyncDispose]: async () => {
      if (!exited) process.kill("SIGKILL");
      await stop();
    },
  };
}

/** Opens `count` connections, 32 at a time; each sends `first` (may be empty). */
async function flood(port: number, count: number, first: string): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < count; i += 32) {
    await Promise.all(
      Array.from({ length: Math.min(32, count - i) }, async () => {
        const conn = await connect(port);
        conns.push(conn);
        if (first) await send(conn, first);
      }),
    );
  }
  return conns;
}

/** `PUT /v1/nodes/{fp}` on a new connection; the reply and how long it took. */
async function claim(
  port: number,
  fp: string,
): Promise<{ reply: Reply; ms: number }> {
  const started = performance.now();
  const conn = await connect(port);
  try {
    await send(conn, request("PUT", `/v1/nodes/${fp}`));
    // A spawned server: its Relay-Clock is the real clock.
    const reply = {
      ...(await readResponse(conn)),
      clock: null,
      request: { method: "PUT", path: `/v1/nodes/${fp}` },
    };
    return { reply, ms: performance.now() - started };
  } finally {
    closeQuietly(conn);
  }
}

/** Waits until the server has closed every one of `conns`. */
async function allClosedByServer(conns: Deno.Conn[]): Promise<void> {
  const since = performance.now();
  const withinMs = HEADER_TIMEOUT_MS + 20_000;
  await Promise.all(conns.map((conn) => closedByServer(conn, { since, withinMs })));
  for (const conn of conns) closeQuietly(conn);
}

Deno.test("relay serve under a low open-file limit survives connection floods", async (t) => {
  await using dir = await tempDir();
  const [license] = await addMinted(dir.path, 1);
  await using server = await startLimited(dir.path);
  const exhausted = () =>
    server.lines.filter((line) =>
      typeof line.msg === "string" && line.msg.startsWith("Out of file descriptors")
    );

  await t.step(`${FLOOD} connections that send nothing`, async () => {
    // The claim races the flood's connections.
    const [conns, first] = await Promise.all([
      flood(server.port, FLOOD, ""),
      claim(server.port, "fresh"),
    ]);
    assert.ok(first.ms < PROMPT_MS, `a claim during the flood took ${first.ms} ms`);
    const clock = relayClock(first.reply);
    assertJson(first.reply, 201, createdBody(license.certificate, license.key, clock, TTL));

    const during = await claim(server.port, "fresh");
    assert.ok(during.ms < PROMPT_MS, `a claim with the flood open took ${during.ms} ms`);
    assertJson(during.reply, 202, extendedBody(relayClock(during.reply), TTL));

    await allClosedByServer(conns);
    const after = await claim(server.port, "fresh");
    assertJson(after.reply, 202, extendedBody(relayClock(after.reply), TTL));
    assert.equal(exhausted().length, 1, "one warning for the flood");
    assert.equal(exhausted()[0].level, "warn");
  });

  await t.step("the burst of failed accepts ends with one notice", async () => {
    await server.logged("accepting connections again", 1);
    const [end] = server.lines.filter((line) => line.msg === "accepting connections again");
    assert.ok(Number(end.failed_accepts) >= 1, JSON.stringify(end));
    assert.equal(exhausted().length, 1);
  });

  await t.step(`${FLOOD} connections that send half their headers`, async () => {
    const [conns, first] = await Promise.all([
      flood(server.port, FLOOD, requestHead("PUT", "/v1/nodes/slowloris")),
      claim(server.port, "fresh"),
    ]);
    assert.ok(first.ms < PROMPT_MS, `a claim during the flood took ${first.ms} ms`);
    assertJson(first.reply, 202, extendedBody(relayClock(first.reply), TTL));

    const during = await claim(server.port, "second");
    assert.ok(during.ms < PROMPT_MS, `a claim with the flood open took ${during.ms} ms`);
    assertJson(during.reply, 410, `{"error":"no licenses available"}\n`);

    await allClosedByServer(conns);
    const after = await claim(server.port, "fresh");
    assertJson(after.reply, 202, extendedBody(relayClock(after.reply), TTL));
    await server.logged("accepting connections again", 2);
    assert.equal(exhausted().length, 2, "one more warning for the second flood");
  });

  await t.step(`kept-alive connections are closed after ${IDLE_TIMEOUT_MS} ms idle`, async () => {
    const conns = await flood(server.port, 50, "");
    const since = performance.now();
    await Promise.all(conns.map(async (conn) => {
      await send(conn, request("GET", "/v1/health"));
      assert.equal((await readResponse(conn)).status, 200);
    }));
    const elapsed = await Promise.all(
      conns.map((conn) => closedByServer(conn, { since, withinMs: IDLE_TIMEOUT_MS + 20_000 })),
    );
    for (const conn of conns) closeQuietly(conn);
    assert.ok(Math.min(...elapsed) >= IDLE_TIMEOUT_MS, `closed after ${Math.min(...elapsed)} ms`);
    // By the idle timeout, not the longer header timeout: they were answered.
    assert.ok(Math.max(...elapsed) < HEADER_TIMEOUT_MS, `closed after ${Math.max(...elapsed)} ms`);
  });

  await t.step("the server stops cleanly: exit 0, nothing on stderr", async () => {
    const { code, stderr } = await server.stop();
    assert.equal(stderr, "");
    assert.equal(code, 0);
  });
});
