/**
 * The Deno load client of `scripts/bench.ts`, run as separate processes (never
 * inside the benchmark's own process, whose synchronous SQLite reads would
 * stall it). Speaks plain HTTP/1.1 over keep-alive TCP connections, one
 * request in flight per connection.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 scripts/bench/client.ts '<spec JSON>'
 * deno run scripts/bench/client.ts --help
 * ```
 *
 * Specs:
 * - `{"port":P,"plan":LoadPlan,"ids":[c,…]}`: runs connections `ids` of the
 *   plan (see `plan.ts`) and prints `RELAY_BENCH_JSON {RawLoadResult}`; with
 *   `"ports":[P1,…]` (the replicas of a cluster), connection c talks to
 *   `ports[c % ports.length]`.
 * - `{"port":P,"probe":{"nodes":[fp,…],"seconds":S}}`: one connection per
 *   node, each alternating `GET /v1/health` and a heartbeat `PUT` of its node,
 *   until stdin closes or S seconds pass; prints `RELAY_BENCH_JSON
 *   {"samples":[[start epoch ms, latency ms, status],…]}`.
 *
 * @module
 */

import { InvalidArgumentError } from "commander";
import {
  CONSOLE,
  type Parsed,
  parseScriptArgs,
  scriptCommand,
  type ScriptOutput,
} from "../command_line.ts";
import {
  bucketOf,
  type ClientSpec,
  type ConnectionResult,
  fingerprintsOf,
  limitOf,
  type LoadPlan,
  portOf,
  type ProbeResult,
  type ProbeSpec,
  type RawLoadResult,
  requestOf,
  RESULT_LINE_PREFIX,
} from "./plan.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("latin1");
const HEADER_END = [13, 10, 13, 10];

/** A keep-alive HTTP/1.1 connection with one request in flight at a time. */
class HttpConnection {
  #conn: Deno.TcpConn;
  #buffer = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  static async open(port: number): Promise<HttpConnection> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    return new HttpConnection(conn);
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  /** Sends one request and reads the whole answer; returns its status. */
  async request(method: string, path: string): Promise<number> {
    const bytes = encoder.encode(
      `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n`,
    );
    for (let written = 0; written < bytes.length;) {
      written += await this.#conn.write(bytes.subarray(written));
    }
    let headerEnd: number;
    while ((headerEnd = this.#find(HEADER_END)) < 0) await this.#fill();
    const head = decoder.decode(this.#buffer.subarray(this.#start, headerEnd));
    this.#start = headerEnd + 4;
    const status = Number(head.slice(9, 12));
    const lower = head.toLowerCase();
    const length = /\r\ncontent-length:\s*(\d+)/.exec(lower);
    if (length) {
      await this.#skip(Number(length[1]));
    } else if (/\r\ntransfer-encoding:\s*chunked/.test(lower)) {
      for (;;) {
        let lineEnd: number;
        while ((lineEnd = this.#find([13, 10])) < 0) await this.#fill();
        const size = parseInt(decoder.decode(this.#buffer.subarray(this.#start, lineEnd)), 16);
        this.#start = lineEnd + 2;
        await this.#skip(size + 2);
        if (size === 0) break;
      }
    } else if (status !== 204 && status !== 304 && method !== "HEAD") {
      throw new Error(`answer without a length: ${head.split("\r\n")[0]}`);
    }
    return status;
  }

  #find(pattern: number[]): number {
    const buffer = this.#buffer;
    outer: for (let i = this.#start; i + pattern.length <= this.#end; i++) {
      for (let j = 0; j < pattern.length; j++) {
        if (buffer[i + j] !== pattern[j]) continue outer;
      }
      return i;
    }
    return -1;
  }

  async #fill(): Promise<void> {
    if (this.#start > 0) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end === this.#buffer.length) {
      const bigger = new Uint8Array(this.#buffer.length * 2);
      bigger.set(this.#buffer);
      this.#buffer = bigger;
    }
    const n = await this.#conn.read(this.#buffer.subarray(this.#end));
    if (n === null) throw new Error("connection closed by the server");
    this.#end += n;
  }

  async #skip(count: number): Promise<void> {
    while (this.#end - this.#start < count) {
      count -= this.#end - this.#start;
      this.#start = this.#end;
      await this.#fill();
    }
    this.#start += count;
  }
}

/** Epoch microseconds, comparable between processes. */
function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

async function runConnection(
  port: number,
  plan: LoadPlan,
  c: number,
  deadline: number,
  errors: Record<string, number>,
): Promise<ConnectionResult> {
  const result: ConnectionResult = {
    id: c,
    received: 0,
    first: 0,
    last: 0,
    max: 0,
    statuses: {},
    hist: {},
  };
  const limit = limitOf(plan, c);
  if (limit === 0) return result;
  const names = plan.set ? fingerprintsOf(plan.set, c, plan.connections) : [];
  let connection: HttpConnection | undefined;
  while (nowUs() < deadline && (limit === undefined || result.received < limit)) {
    try {
      connection ??= await HttpConnection.open(port);
      const { method, path } = requestOf(plan, c, result.received, names);
      const sent = nowUs();
      if (result.received === 0) result.first = sent;
      const status = await connection.request(method, path);
      const done = nowUs();
      const latency = done - sent;
      result.last = done;
      result.received++;
      result.statuses[status] = (result.statuses[status] ?? 0) + 1;
      const bucket = bucketOf(latency);
      result.hist[bucket] = (result.hist[bucket] ?? 0) + 1;
      if (latency > result.max) result.max = latency;
    } catch (error) {
      // Like wrk: count it, reconnect, and send the same request again.
      const kind = error instanceof Deno.errors.ConnectionRefused ? "connect" : "read";
      errors[kind] = (errors[kind] ?? 0) + 1;
      connection?.close();
      connection = undefined;
      if (errors[kind] > 1000) break;
    }
  }
  connection?.close();
  return result;
}

async function runPlan(ports: number[], plan: LoadPlan, ids: number[]): Promise<RawLoadResult> {
  const deadline = nowUs() + plan.seconds * 1_000_000;
  const errors: Record<string, number> = {};
  const connections = await Promise.all(
    ids.map((c) => runConnection(portOf(ports, c), plan, c, deadline, errors)),
  );
  return { connections, errors };
}

async function runProbe(port: number, probe: ProbeSpec): Promise<ProbeResult> {
  const samples: ProbeResult["samples"] = [];
  let stopped = false;
  const deadline = performance.now() + probe.seconds * 1000;
  // Stop when the benchmark closes our stdin.
  const stdinClosed = (async () => {
    for await (const _ of Deno.stdin.readable) { /* nothing to read */ }
    stopped = true;
  })();
  await Promise.all(probe.nodes.map(async (node) => {
    let connection: HttpConnection | undefined;
    let turn = 0;
    while (!stopped && performance.now() < deadline) {
      try {
        connection ??= await HttpConnection.open(port);
        const health = turn++ % 2 === 0;
        const start = performance.timeOrigin + performance.now();
        const status = health
          ? await connection.request("GET", "/v1/health")
          : await connection.request("PUT", `/v1/nodes/${node}`);
        samples.push([start, performance.timeOrigin + performance.now() - start, status]);
      } catch {
        connection?.close();
        connection = undefined;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
    connection?.close();
  }));
  stopped = true;
  await Promise.race([stdinClosed, new Promise((resolve) => setTimeout(resolve, 10))]);
  return { samples };
}

/** Parses the client's command line: its one argument, the JSON spec. */
export function parseClientArgs(
  args: string[],
  output: ScriptOutput = CONSOLE,
): Parsed<ClientSpec> {
  const command = scriptCommand(
    "scripts/bench/client.ts",
    "The Deno load client of the benchmark: runs connections of a load plan, or a probe.",
    output,
  ).argument("<spec>", "what to run, as JSON (see the module's documentation)", parseSpec);
  return parseScriptArgs(command, args, () => command.processedArgs[0] as ClientSpec);
}

function parseSpec(text: string): ClientSpec {
  let spec: Record<string, unknown> | null;
  try {
    spec = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`Not JSON: ${(error as Error).message}`);
  }
  const valid = typeof spec === "object" && spec !== null && typeof spec.port === "number" &&
    (spec.probe !== undefined || (spec.plan !== undefined && Array.isArray(spec.ids)));
  if (!valid) throw new InvalidArgumentError("Expected {port, plan, ids} or {port, probe}");
  return spec as unknown as ClientSpec;
}

if (import.meta.main) {
  const parsed = parseClientArgs(Deno.args);
  if (parsed.kind === "exit") Deno.exit(parsed.code);
  const spec = parsed.options;
  const result = "probe" in spec
    ? await runProbe(spec.port, spec.probe)
    : await runPlan(spec.ports ?? [spec.port], spec.plan, spec.ids);
  console.log(`${RESULT_LINE_PREFIX}${JSON.stringify(result)}`);
  Deno.exit(0);
}
