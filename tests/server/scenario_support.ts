/**
 * The reference scenarios on every storage engine. {@link scenario} registers
 * one `Deno.test` per engine (`name [sqlite]`, `name [postgres]`); each run
 * gets fresh databases, the same license files (minted once, added to each
 * engine), and a server clock that starts at the same second. The same
 * assertions then hold on both, and once both have run, the PostgreSQL run is
 * compared with the SQLite one: every reply (status, headers but the values
 * of `Relay-Clock` and `Date`, body bytes) and every row (licenses with their
 * file as bytes, nodes, audit records; by natural keys, since ids may differ)
 * must be the same.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { MintOptions } from "../../scripts/mint.ts";
import type { CliResult, MintedFile } from "../helpers.ts";
import { mintFiles, runInProcess } from "../helpers.ts";
import { type Backend, backendDatabase, BACKENDS, type Param } from "../reliability/backends.ts";
import { call, type Reply, type Target } from "./http_support.ts";
import {
  FakeClock,
  type InProcessOptions,
  type InProcessServer,
  serveInProcess,
} from "./in_process.ts";

/** A `licenses` row; `file` as bytes on both engines (SQLite: Uint8Array; PostgreSQL: Buffer). */
export interface LicenseRow {
  id: number;
  key: string;
  file: Uint8Array;
  claims: number;
  node_id: number | null;
  pool_id: number | null;
  last_claimed_at: number | null;
  last_released_at: number | null;
}

/** A `nodes` row. */
export interface NodeRow {
  id: number;
  fingerprint: string;
  last_heartbeat_at: number | null;
  deactivated_at: number | null;
}

/** An audit record as `[event, entity type, entity_id, pool_id]`, as `auditTrail()` of helpers.ts. */
export type AuditEntry = [string, string, number, number | null];

/** One fresh database of a scenario, on the scenario's engine. */
export interface ScenarioDatabase {
  backend: Backend;
  /** A temporary folder of its own. */
  dir: string;
  /** What `--database` takes. */
  database: string;
  /** Rows of one statement with `?` placeholders (see backends.ts), numbers as numbers. */
  rows<T = Record<string, unknown>>(sql: string, ...params: Param[]): Promise<T[]>;
  /**
   * Adds `count` licenses with the real `relay add`: the same files on every
   * engine, minted with `mint`, added with `--seats` if given, at `at`
   * (default: the second every scenario's clock starts at).
   */
  add(count: number, options?: AddOptions): Promise<MintedFile[]>;
  /**
   * `relay --database <this> ...args` in-process in {@link dir} at `now`
   * (default: the real time), every mention of the database as `<db>`.
   */
  relay(args: string[], options?: { now?: Date; env?: Record<string, string> }): Promise<CliResult>;
  /** The one license with `key`. */
  license(key: string): Promise<LicenseRow>;
  /** The one node with `fingerprint`. */
  node(fingerprint: string): Promise<NodeRow>;
  /** The id of the pool `name`. */
  poolId(name: string): Promise<number>;
  /** Every audit record, oldest first. */
  auditTrail(): Promise<AuditEntry[]>;
}

/** Options of {@link ScenarioDatabase.add}. */
export interface AddOptions {
  pool?: string;
  /** How the files are minted (`issued`, `ttl`, `maxMachines`…). */
  mint?: MintOptions;
  /** `relay add --seats`. */
  seats?: number;
  /** The clock of `relay add`. */
  at?: Date;
}

/** What a scenario runs with. */
export interface Scenario {
  backend: Backend;
  /** The server clock of this run; every server of the scenario shares it. */
  clock: FakeClock;
  /** The scenario's first database. */
  db: ScenarioDatabase;
  /** Another fresh database, for a scenario with two servers apart. */
  database(): Promise<ScenarioDatabase>;
  /** `relay serve` in-process on `db` (or `options.db`) and on {@link clock}. */
  serve(
    args?: string[],
    options?: Omit<InProcessOptions, "clock" | "database"> & { db?: ScenarioDatabase },
  ): Promise<InProcessServer>;
  /** `call()` of http_support.ts, with the reply kept for the comparison between engines. */
  call(
    target: Target,
    method: string,
    path: string,
    headers?: Record<string, string>,
  ): Promise<Reply>;
  /** `PUT /v1/nodes/{fp}`, kept for the comparison. */
  claim(target: Target, fp: string, pool?: string): Promise<Reply>;
  /** `DELETE /v1/nodes/{fp}`, kept for the comparison. */
  release(target: Target, fp: string, pool?: string): Promise<Reply>;
  /** {@link ScenarioDatabase.relay} on `db` (default: the first), the result kept for the comparison. */
  relay(
    args: string[],
    options?: { now?: Date; env?: Record<string, string>; db?: ScenarioDatabase },
  ): Promise<CliResult>;
}

/** Options of {@link scenario}. */
export interface ScenarioOptions {
  /**
   * Compare the engines' replies and rows (default true); false where the
   * outcome is random by design (`--strategy rand`) or where spawned
   * processes answer on the real clock. The comparison runs at the end of
   * the PostgreSQL run, when the SQLite run of the same process passed.
   */
  compare?: boolean;
}

/** What one run of a scenario saw, to be compared with the other engine's. */
interface Run {
  replies: unknown[];
  rows: unknown[];
}

/** The runs so far, by scenario name and engine. */
const runs = new Map<string, Map<Backend, Run>>();

/** License files minted for a scenario, by scenario, database and `add` call. */
const minted = new Map<string, Promise<{ publicKey: string; files: MintedFile[] }>>();

/** One start for every scenario's clock: the engines' replies are then the same bytes. */
const START = new Date();

/** Header values that are times of the real clock or of the run. */
const TIMES = new Set(["relay-clock", "date"]);

/** Registers `name [sqlite]` and `name [postgres]`. */
export function scenario(
  name: string,
  fn: (t: Deno.TestContext, s: Scenario) => Promise<void>,
  options: ScenarioOptions = {},
): void {
  for (const backend of BACKENDS) {
    Deno.test(`${name} [${backend}]`, async (t) => {
      const record: Run = { replies: [], rows: [] };
      await using stack = new AsyncDisposableStack();
      const databases: ScenarioDatabase[] = [];
      const open = async () => {
        const opened = stack.use(await backendDatabase(backend));
        const db = scenarioDatabase(opened, `${name}#${databases.length}`);
        databases.push(db);
        return db;
      };
      const clock = new FakeClock(START);
      const keep = (reply: Reply) => {
        record.replies.push(transcribed(reply));
        return reply;
      };
      const s: Scenario = {
        backend,
        clock,
        db: await open(),
        database: open,
        async serve(args = [], { db, ...rest } = {}) {
          const server = await serveInProcess(args, {
            ...rest,
            clock,
            database: (db ?? s.db).database,
          });
          return stack.use(server);
        },
        call: async (target, method, path, headers) =>
          keep(await call(target, method, path, headers)),
        claim: (target, fp, pool) =>
          s.call(
            target,
            "PUT",
            `/v1/nodes/${fp}`,
            pool === undefined ? {} : { "Relay-Pool": pool },
          ),
        release: (target, fp, pool) =>
          s.call(
            target,
            "DELETE",
            `/v1/nodes/${fp}`,
            pool === undefined ? {} : { "Relay-Pool": pool },
          ),
        async relay(args, { db, ...rest } = {}) {
          const result = await (db ?? s.db).relay(args, rest);
          record.replies.push({ relay: args, ...result });
          return result;
        },
      };
      await fn(t, s);
      if (options.compare === false) return;
      for (const db of databases) record.rows.push(await snapshot(db));
      const seen = runs.get(name) ?? new Map<Backend, Run>();
      runs.set(name, seen);
      seen.set(backend, record);
      const first = seen.get(BACKENDS[0]);
      if (backend !== BACKENDS[0] && first) {
        assert.deepEqual(record.replies, first.replies, `replies on ${backend} and ${BACKENDS[0]}`);
        assert.deepEqual(record.rows, first.rows, `rows on ${backend} and ${BACKENDS[0]}`);
      }
    });
  }
}

/** A reply as the comparison sees it: time header values left out. */
function transcribed(reply: Reply): unknown {
  const headers = [...reply.headers].map(([name, value]) =>
    TIMES.has(name) ? [name] : [name, value]
  );
  return { request: reply.request, status: reply.status, headers, body: reply.body };
}

/** The row helpers of one database, and `add` with files shared between engines. */
function scenarioDatabase(
  db: Awaited<ReturnType<typeof backendDatabase>>,
  mintKey: string,
): ScenarioDatabase {
  let adds = 0;
  async function one<T>(what: string, sql: string, ...params: Param[]): Promise<T> {
    const rows = await db.rows<T>(sql, ...params);
    assert.equal(rows.length, 1, `one ${what}`);
    return rows[0];
  }
  return {
    backend: db.backend,
    dir: db.dir,
    database: db.database,
    rows: db.rows,
    async add(count, options = {}) {
      const key = `${mintKey}#${adds++}`;
      if (!minted.has(key)) minted.set(key, mintFiles(db.dir, count, options.mint));
      const { publicKey, files: mintedFiles } = await minted.get(key)!;
      const files: MintedFile[] = [];
      for (const file of mintedFiles) {
        const path = `${db.dir}/${file.id}.lic`;
        await Deno.writeTextFile(path, file.certificate);
        files.push({ ...file, path });
      }
      const args = ["add", "--public-key", publicKey];
      for (const file of files) args.push("--file", file.path, "--key", file.key);
      if (options.pool) args.push("--pool", options.pool);
      if (options.seats !== undefined) args.push("--seats", String(options.seats));
      args.push("--database", db.database);
      // The scenario's start by default: `added_at` is then the same on every engine.
      const now = options.at ?? new Date(Math.floor(START.getTime() / 1000) * 1000);
      const result = await runInProcess(args, { now, env: { NO_COLOR: "1" } });
      if (result.code !== 0) throw new Error(`relay add failed: ${result.stderr}`);
      return files;
    },
    async relay(args, { now = new Date(), env = {} } = {}) {
      const result = await runInProcess(["--database", db.database, ...args], {
        now,
        env: { NO_COLOR: "1", INIT_CWD: db.dir, ...env },
      });
      const named = (text: string) => text.replaceAll(db.database, "<db>");
      return { code: result.code, stdout: named(result.stdout), stderr: named(result.stderr) };
    },
    async license(key) {
      const row = await one<LicenseRow>(
        `license with key ${key}`,
        `SELECT id, key, file, claims, node_id, pool_id, last_claimed_at, last_released_at
         FROM licenses WHERE key = ?`,
        key,
      );
      return { ...row, file: new Uint8Array(row.file) };
    },
    node: (fingerprint) =>
      one<NodeRow>(
        `node ${JSON.stringify(fingerprint)}`,
        "SELECT id, fingerprint, last_heartbeat_at, deactivated_at FROM nodes WHERE fingerprint = ?",
        fingerprint,
      ),
    async poolId(name) {
      return (await one<{ id: number }>(
        `pool ${name}`,
        "SELECT id FROM pools WHERE name = ?",
        name,
      ))
        .id;
    },
    async auditTrail() {
      const rows = await db.rows<
        { event: string; entity: string; entity_id: number; pool_id: number | null }
      >(
        `SELECT e.name AS event, t.name AS entity, a.entity_id, a.pool_id
         FROM audit_logs a
         JOIN event_types e ON e.id = a.event_type_id
         JOIN entity_types t ON t.id = a.entity_type_id
         ORDER BY a.id`,
      );
      return rows.map((row) => [row.event, row.entity, row.entity_id, row.pool_id]);
    },
  };
}

/** Text order that does not depend on an engine's collation. */
function byText<T>(rows: T[], key: (row: T) => string): T[] {
  return rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/**
 * Every row a scenario leaves, by natural keys (license guid, fingerprint,
 * pool name) rather than ids, which PostgreSQL's sequences may skip; times
 * of `relay add` (the real clock) left out, the server's times kept.
 */
async function snapshot(db: ScenarioDatabase): Promise<unknown> {
  const licenses = await db.rows<Record<string, unknown> & { guid: string; file: Uint8Array }>(
    `SELECT l.guid, l.key, l.file, l.claims, l.last_claimed_at, l.last_released_at,
       l.file_issued_at, l.file_expires_at, l.expires_at, n.fingerprint AS node, p.name AS pool
     FROM licenses l LEFT JOIN nodes n ON n.id = l.node_id LEFT JOIN pools p ON p.id = l.pool_id`,
  );
  const nodes = await db.rows<Record<string, unknown> & { fingerprint: string }>(
    `SELECT fingerprint, last_heartbeat_at, deactivated_at, lease_expires_at, holder_type
     FROM nodes`,
  );
  const audit = await db.rows(
    `SELECT e.name AS event, t.name AS entity, p.name AS pool,
       COALESCE(l.guid, n.fingerprint, q.name) AS subject,
       CASE WHEN e.name IN ('license.added', 'pool.added') THEN NULL ELSE a.created_at END AS at
     FROM audit_logs a
     JOIN event_types e ON e.id = a.event_type_id
     JOIN entity_types t ON t.id = a.entity_type_id
     LEFT JOIN pools p ON p.id = a.pool_id
     LEFT JOIN licenses l ON t.name = 'license' AND l.id = a.entity_id
     LEFT JOIN nodes n ON t.name = 'node' AND n.id = a.entity_id
     LEFT JOIN pools q ON t.name = 'pool' AND q.id = a.entity_id
     ORDER BY a.id`,
  );
  return {
    licenses: byText(licenses, (row) => row.guid).map((row) => ({
      ...row,
      file: new Uint8Array(row.file),
    })),
    nodes: byText(nodes, (row) => row.fingerprint),
    audit,
  };
}
