/**
 * What every bad-input test shares: one real `relay serve` process with 53
 * licenses (50 without a pool, 2 in "prod", 1 in "café"), HTTP through fetch
 * and raw sockets that counts its exchanges, groups of cases that count
 * themselves and collect every mismatch before failing (so one run reports
 * them all), and the closing steps each test ends with: the database holds
 * every license and exactly the fingerprints that got a 201, no 5xx was
 * seen, the process exits 0 on SIGTERM with no error logged, and each group
 * checked at least its minimum number of cases.
 *
 * Every case must get a clear 4xx (or, where the input is in fact valid, the
 * normal 2xx/410), never a 5xx, never a crash or a hang.
 *
 * @module
 */

import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import type { ServerProcess } from "../helpers.ts";
import { type Backend, type BackendDatabase, backendDatabase } from "./backends.ts";
import {
  describe,
  firstStatus,
  raw,
  type RawOptions,
  type RawResult,
  READ_TIMEOUT_MS,
} from "./raw_http.ts";

export { READ_TIMEOUT_MS };

/** The longest any single fetch may take. */
const FETCH_TIMEOUT_MS = 5_000;

/** The API's error bodies, exactly as the reference Relay writes them. */
export const ERR = {
  notFound: `{"error":"not found"}\n`,
  claimNotFound: `{"error":"claim not found"}\n`,
  tooLong: `{"error":"fingerprint too long"}\n`,
  invalidFingerprint: `{"error":"invalid fingerprint"}\n`,
  invalidPool: `{"error":"invalid pool header"}\n`,
  methodNotAllowed: `{"error":"method not allowed"}\n`,
} as const;

/** Long values cut for failure messages. */
function clip(text: string | undefined, max = 300): string {
  return text === undefined || text.length <= max ? String(text) : `${text.slice(0, max)}…`;
}

/** Percent-encodes a whole fingerprint (encodeURIComponent, plus `'`). */
export function enc(text: string): string {
  return encodeURIComponent(text).replaceAll("'", "%27");
}

/** A fetch reply, body read to the end. */
export interface Reply {
  status: number;
  headers: Headers;
  body: string;
  /** How long the exchange took. */
  ms: number;
}

/** The license key of a 201 body, or null. */
export function leasedKey(reply: { status: number; body: string }): string | null {
  if (reply.status !== 201) return null;
  try {
    return JSON.parse(reply.body).license_key ?? null;
  } catch {
    return null;
  }
}

/** One group of cases: counts them and collects every mismatch. */
export class Group {
  readonly failures: string[] = [];
  readonly #server: BadInputServer;

  /** Use {@link BadInputServer.group}. */
  constructor(readonly name: string, server: BadInputServer) {
    this.#server = server;
  }

  /** Counts one case; records `detail` when `ok` is false. */
  check(label: string, ok: boolean, detail = ""): boolean {
    this.#server.counts.set(this.name, (this.#server.counts.get(this.name) ?? 0) + 1);
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

  /** Counts one case: `status` is one of `allowed`; any 5xx is also recorded for the server. */
  status(label: string, status: number | null, allowed: readonly number[]): boolean {
    if (status !== null && status >= 500) this.#server.serverErrors.push(`${label}: ${status}`);
    return this.check(
      label,
      status !== null && allowed.includes(status),
      `expected one of ${allowed.join("/")}, got ${status}`,
    );
  }

  /**
   * Counts one raw exchange: a 2xx/4xx in `allowed`, or (when `closeOk`) a
   * closed connection without any response; never a 5xx, never a timeout.
   */
  raw(label: string, result: RawResult, allowed: readonly number[], closeOk = false): boolean {
    for (const response of result.responses) {
      if (response.status >= 500) this.#server.serverErrors.push(`${label}: ${response.status}`);
    }
    const status = firstStatus(result);
    if (status === null) {
      return this.check(
        label,
        closeOk && result.end !== "timeout",
        `no response (${describe(result)})`,
      );
    }
    return this.check(
      label,
      allowed.includes(status),
      `expected ${allowed.join("/")}; ${describe(result)}`,
    );
  }

  /** Fails the step with every mismatch. */
  finish(): void {
    assert.deepEqual(this.failures, [], `${this.name}: ${this.failures.length} case(s) failed`);
  }
}

/** The licensed `relay serve` the bad input goes to, and what was seen so far. */
export interface BadInputServer extends AsyncDisposable {
  server: ServerProcess;
  port: number;
  /** The engine of its database. */
  backend: Backend;
  /** Rows of one statement on its database (`?` placeholders). */
  rows: BackendDatabase["rows"];
  /** Every license key, sorted. */
  allKeys: string[];
  /** License keys without a pool (all free at the start). */
  unpooled: string[];
  /** The pool of each license key (null: none). */
  poolOfKey: Map<string, string | null>;
  /** Cases checked, by group. */
  counts: Map<string, number>;
  /** HTTP exchanges made (fetch calls and raw-socket exchanges), by group. */
  exchanges: Map<string, number>;
  /** Every 5xx seen anywhere, as `label: status`. */
  serverErrors: string[];
  /** Fingerprints that got a 201: exactly these may be in `nodes`. */
  granted: Set<string>;
  /** Observations worth reporting (printed once at the end). */
  notes: string[];
  /** Starts a group of cases; later exchanges count for it. */
  group(name: string): Group;
  /** Counts one exchange made by hand (a socket opened by the test itself). */
  exchange(): void;
  /** One fetch, body read to the end, bounded by 5 s. */
  send(
    method: string,
    path: string,
    init?: { headers?: HeadersInit; body?: BodyInit },
  ): Promise<Reply>;
  /** One raw-socket exchange (see `raw_http.ts`). */
  raw(data: string | Uint8Array, options?: RawOptions): Promise<RawResult>;
  /** `GET /v1/health` answers 200 and the process is still running. */
  checkHealth(group: Group, label: string): Promise<void>;
  /** PUT (201), PUT again (202), DELETE (204), with a DELETE (404) first; through fetch. */
  claimCycle(
    group: Group,
    label: string,
    path: string,
    stored: string,
    headers?: Record<string, string>,
    pool?: string | null,
  ): Promise<void>;
  /** DELETE a fingerprint that may hold a lease after an odd request; records it if it did. */
  cleanup(group: Group, label: string, fingerprint: string): Promise<number>;
  /**
   * The closing steps: database, no 5xx and a clean SIGTERM, and the case
   * count, where each group of `minimums` must have checked at least that
   * many cases (and made at least 10 exchanges).
   */
  closingSteps(t: Deno.TestContext, minimums: Record<string, number>): Promise<void>;
}

/** Starts `relay serve` on a new database on `backend` with the 53 licenses. */
export async function badInputServer(backend: Backend = "sqlite"): Promise<BadInputServer> {
  const started = performance.now();
  const db = await backendDatabase(backend);
  try {
    const unpooled = await db.add(50);
    const prod = await db.add(2, { pool: "prod" });
    // A pool with a non-ASCII name, to see how a UTF-8 Relay-Pool header is read.
    const cafe = await db.add(1, { pool: "café" });
    const allKeys = [...unpooled, ...prod, ...cafe].map((file) => file.key).sort();
    const poolOfKey = new Map<string, string | null>([
      ...unpooled.map((file): [string, null] => [file.key, null]),
      ...prod.map((file): [string, string] => [file.key, "prod"]),
      ...cafe.map((file): [string, string] => [file.key, "café"]),
    ]);
    const server = await db.serve();
    let currentGroup = "setup";
    const fixture: BadInputServer = {
      server,
      port: server.port,
      backend,
      rows: db.rows,
      allKeys,
      unpooled: unpooled.map((file) => file.key),
      poolOfKey,
      counts: new Map(),
      exchanges: new Map(),
      serverErrors: [],
      granted: new Set(),
      notes: [],
      group(name) {
        currentGroup = name;
        return new Group(name, fixture);
      },
      exchange() {
        fixture.exchanges.set(currentGroup, (fixture.exchanges.get(currentGroup) ?? 0) + 1);
      },
      async send(method, path, init = {}) {
        fixture.exchange();
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
        const started = performance.now();
        try {
          const response = await fetch(`${server.url}${path}`, {
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
      },
      raw(data, options) {
        fixture.exchange();
        return raw(server.port, data, options);
      },
      async checkHealth(group, label) {
        const reply = await fixture.send("GET", "/v1/health");
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
      },
      async claimCycle(group, label, path, stored, headers = {}, pool = null) {
        const before = await fixture.send("DELETE", path, { headers });
        group.status(`${label}: DELETE before claim`, before.status, [404]);
        group.eq(`${label}: DELETE before claim body`, before.body, ERR.claimNotFound);
        const created = await fixture.send("PUT", path, { headers });
        if (group.status(`${label}: PUT`, created.status, [201])) fixture.granted.add(stored);
        const key = leasedKey(created);
        group.eq(
          `${label}: pool of the leased license`,
          key === null ? "none" : poolOfKey.get(key),
          pool,
        );
        const extended = await fixture.send("PUT", path, { headers });
        group.status(`${label}: PUT again (heartbeat)`, extended.status, [202]);
        const released = await fixture.send("DELETE", path, { headers });
        group.status(`${label}: DELETE`, released.status, [204]);
        group.eq(`${label}: DELETE body`, released.body, "");
      },
      async cleanup(group, label, fingerprint) {
        const reply = await fixture.send("DELETE", `/v1/nodes/${enc(fingerprint)}`);
        group.status(`${label}: cleanup DELETE`, reply.status, [204, 404]);
        if (reply.status === 204) fixture.granted.add(fingerprint);
        return reply.status;
      },
      closingSteps: (t, minimums) => closingSteps(t, fixture, { allKeys, started, minimums }),
      [Symbol.asyncDispose]: () => db[Symbol.asyncDispose](),
    };
    return fixture;
  } catch (error) {
    await db[Symbol.asyncDispose]();
    throw error;
  }
}

/** The closing steps of every bad-input test (see {@link BadInputServer.closingSteps}). */
async function closingSteps(
  t: Deno.TestContext,
  fixture: BadInputServer,
  { allKeys, started, minimums }: {
    allKeys: string[];
    started: number;
    minimums: Record<string, number>;
  },
): Promise<void> {
  const { rows, server, counts, exchanges, granted, notes, serverErrors } = fixture;
  await t.step(
    "the database: every license kept, every stored fingerprint exactly as sent",
    async () => {
      const group = fixture.group("database");
      group.eq(
        "licenses intact",
        (await rows<{ key: string }>("SELECT key FROM licenses")).map((row) => row.key).sort(),
        allKeys,
      );
      group.eq(
        "no lease left behind",
        Number(
          (await rows<{ n: number }>(
            "SELECT count(*) AS n FROM licenses WHERE node_id IS NOT NULL",
          ))[0]
            .n,
        ),
        0,
      );
      const stored = (await rows<{ fingerprint: string }>("SELECT fingerprint FROM nodes")).map((
        row,
      ) => row.fingerprint);
      group.eq("no fingerprint stored twice", stored.length, new Set(stored).size);
      group.eq(
        "the stored fingerprints are exactly the granted ones",
        [...stored].sort(),
        [...granted].sort(),
      );
      group.finish();
    },
  );

  await t.step("no 5xx anywhere, and a clean SIGTERM", async () => {
    const group = fixture.group("shutdown");
    group.eq("no 5xx answers", serverErrors, []);
    await fixture.checkHealth(group, "everything");
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
    for (const [group, minimum] of Object.entries(minimums)) {
      const checked = counts.get(group) ?? 0;
      assert.ok(
        checked >= minimum,
        `group ${group}: ${checked} cases, at least ${minimum} expected`,
      );
      const made = exchanges.get(group) ?? 0;
      assert.ok(made >= 10, `group ${group}: ${made} exchanges, at least 10 expected`);
    }
  });
}
