/**
 * SQL as tagged templates over a pool of `pg` (node-postgres) connections:
 * `` await sql`SELECT … WHERE id = ${id}` `` sends `$1` and binds `id`, and
 * a template inside another one is a fragment of it
 * (`` sql`… WHERE ${inPool(sql, poolId)}` ``). A template runs when it is
 * awaited, as a named prepared statement (one per text, per connection).
 *
 * Connections run in `pg`'s pipeline mode: a statement is written as soon as
 * it is sent, without waiting for the answers of those before it, so a
 * transaction's `BEGIN` travels with its first statement and
 * {@link TransactionSql.defer}red statements with the next one.
 *
 * `pg` rather than the `postgres` package: when the server goes away with
 * statements in flight, `postgres` 3.4.9 throws from a timer, outside any
 * caller, and the process dies (porsager/postgres#1154, #1208, unfixed);
 * `pg` rejects the statements and replaces the connection.
 *
 * @module
 */

// @ts-types="@types/pg"
import pg from "pg";

/** A result: the rows, with how many rows the statement touched. */
export type Rows<T> = T & { count: number };

/** Runs one statement; a client inside a transaction, or the pool; rows as arrays with `arrays`. */
type Run = (
  text: string,
  values: unknown[],
  name?: string,
  arrays?: boolean,
) => Promise<Rows<unknown>>;

/** One statement or fragment: runs when awaited, or is spliced into another. */
export class Query<T = Record<string, unknown>[]> implements PromiseLike<Rows<T>> {
  readonly #run: Run;
  /** The text around the values (a template's strings). */
  readonly parts: readonly string[];
  /** The values between the parts. */
  readonly bound: readonly unknown[];
  /** `unsafe` text: never a prepared statement, and run with its own `$n` params. */
  readonly #raw: { params: readonly unknown[]; prepare: boolean } | null;

  constructor(
    run: Run,
    parts: readonly string[],
    values: readonly unknown[],
    raw: { params: readonly unknown[]; prepare: boolean } | null = null,
  ) {
    this.#run = run;
    this.parts = parts;
    this.bound = values;
    this.#raw = raw;
  }

  then<R1 = Rows<T>, R2 = never>(
    resolve?: ((value: Rows<T>) => R1 | PromiseLike<R1>) | null,
    reject?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.#execute(false).then(resolve, reject);
  }

  /** Runs it and answers each row as an array of its columns, in order. */
  values(): Promise<Rows<unknown[][]>> {
    return this.#execute(true) as unknown as Promise<Rows<unknown[][]>>;
  }

  /** Whether this is `unsafe` text (spliced as is, never prepared). */
  get raw(): boolean {
    return this.#raw !== null;
  }

  #execute(arrays: boolean): Promise<Rows<T>> {
    if (this.#raw !== null) {
      const text = this.parts[0];
      const name = this.#raw.prepare ? statementName(text) : undefined;
      return this.#run(text, [...this.#raw.params], name, arrays) as Promise<Rows<T>>;
    }
    if (!this.bound.some((value) => value instanceof Query)) {
      // No fragment: the text is the template's own, built once.
      let text = TEXTS.get(this.parts);
      if (text === undefined) {
        text = this.parts.reduce((text, part, i) => `${text}$${i}${part}`);
        TEXTS.set(this.parts, text);
      }
      return this.#run(text, [...this.bound], statementName(text), arrays) as Promise<Rows<T>>;
    }
    const values: unknown[] = [];
    let prepared = true;
    let text = "";
    const append = (query: Query<unknown>) => {
      if (query.raw) {
        if (query.#raw!.params.length > 0) {
          throw new Error("unsafe() with params cannot be spliced");
        }
        // Text of a fixed set keeps the statement prepared.
        if (!query.#raw!.prepare) prepared = false;
      }
      query.parts.forEach((part, i) => {
        text += part;
        if (i === query.bound.length) return;
        const value = query.bound[i];
        if (value instanceof Query) {
          append(value);
        } else {
          values.push(value);
          text += `$${values.length}`;
        }
      });
    };
    try {
      append(this as Query<unknown>);
    } catch (error) {
      return Promise.reject(error);
    }
    const name = prepared ? statementName(text) : undefined;
    return this.#run(text, values, name, arrays) as Promise<Rows<T>>;
  }
}

/** The text of each template without fragments, by its strings (the same array every call). */
const TEXTS = new WeakMap<readonly string[], string>();

/** Statement names by text, shared by every connection (each prepares its own). */
const NAMES = new Map<string, string>();

function statementName(text: string): string {
  let name = NAMES.get(text);
  if (name === undefined) {
    name = `relay_${NAMES.size + 1}`;
    NAMES.set(text, name);
  }
  return name;
}

/** The statements of one connection: a transaction's, or the pool's. */
export interface TxSql {
  /** A statement (awaited) or a fragment (inside another template). */
  <T = Record<string, unknown>[]>(strings: TemplateStringsArray, ...values: unknown[]): Query<T>;
  /**
   * Text as is: awaited, it runs with `params` as `$1…` (as a prepared
   * statement with `prepare`: for texts of a small, fixed set); inside a
   * template (without params), it is spliced in, and the statement stays
   * prepared only with `prepare`. Never put a client's value in `text`.
   */
  unsafe<T = Record<string, unknown>[]>(
    text: string,
    params?: readonly unknown[],
    options?: { prepare?: boolean },
  ): Query<T>;
  /** A value bound as a PostgreSQL array (what `pg` does with any array). */
  array<V>(values: readonly V[]): readonly V[];
}

/** The statements of one transaction. */
export interface TransactionSql extends TxSql {
  /**
   * Sends `query` now and does not wait for its answer: it reaches the server
   * with the next statement awaited (or the `COMMIT`), in one round trip. For
   * statements whose answer the caller does not need (writes without
   * `RETURNING`, locks). When it fails, the transaction fails with its error:
   * the next statement awaited rejects with it (not with "current
   * transaction is aborted"), or else the commit does.
   */
  defer(query: Query<unknown>): void;
}

/** A pool of connections: statements, transactions, and the end of it. */
export interface Sql extends TxSql {
  /**
   * Runs `fn` in a transaction (`BEGIN <mode>`) on one connection: commits
   * when it resolves, rolls back when it rejects.
   */
  begin<T>(fn: (sql: TransactionSql) => Promise<T>): Promise<T>;
  begin<T>(mode: string, fn: (sql: TransactionSql) => Promise<T>): Promise<T>;
  /** Closes every connection once the running statements are done. */
  end(options?: { timeout?: number }): Promise<void>;
}

function statements(run: Run): TxSql {
  const sql =
    ((strings: TemplateStringsArray, ...values: unknown[]) =>
      new Query(run, strings, values)) as TxSql;
  sql.unsafe = (text, params = [], options = {}) =>
    new Query(run, [text], [], { params, prepare: options.prepare ?? false });
  sql.array = (values) => values;
  return sql;
}

async function runOn(
  client: pg.Pool | pg.PoolClient,
  text: string,
  values: unknown[],
  name?: string,
  arrays = false,
): Promise<Rows<unknown>> {
  // Without values, name or row arrays, the simple protocol: a migration's
  // several statements in one text.
  const answer = name === undefined && values.length === 0 && !arrays
    ? await client.query(text)
    : await client.query({
      text,
      values,
      ...(name ? { name } : {}),
      ...(arrays ? { rowMode: "array" } : {}),
    });
  // Several statements answer one result each: the last one is the text's.
  const result = Array.isArray(answer) ? answer[answer.length - 1] : answer;
  return Object.assign(result.rows, { count: result.rowCount ?? 0 });
}

/**
 * The writes of one connection held back (its socket corked) and then sent
 * in one system call: `pg` writes each message of a statement (parse, bind,
 * describe, execute, sync) on its own, and on loopback each write costs
 * about as much CPU as the statement itself.
 */
class Writes {
  readonly #socket: { cork(): void; uncork(): void } | undefined;
  #held = false;
  #releasing = false;

  constructor(client: pg.PoolClient) {
    // `pg`'s socket: not in its types, but the same object since `pg` 1.
    const { connection } = client as unknown as {
      connection?: { stream?: { cork?(): void; uncork?(): void } };
    };
    const stream = connection?.stream;
    this.#socket = stream?.cork && stream.uncork
      ? stream as { cork(): void; uncork(): void }
      : undefined;
  }

  /** Holds the writes that follow, until {@link release}. */
  hold(): void {
    if (this.#held || this.#socket === undefined) return;
    this.#socket.cork();
    this.#held = true;
  }

  /** Sends what is held. */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#socket!.uncork();
  }

  /** Sends what is held, and what is written until the current task ends. */
  releaseSoon(): void {
    if (this.#releasing || !this.#held) return;
    this.#releasing = true;
    queueMicrotask(() => {
      this.#releasing = false;
      this.release();
    });
  }
}

/** The statements of a transaction sent without waiting, in the order sent. */
class Deferred {
  readonly #answers: Promise<{ error: unknown } | undefined>[] = [];

  /** How many were sent so far. */
  get count(): number {
    return this.#answers.length;
  }

  add(answer: PromiseLike<unknown>): void {
    this.#answers.push(Promise.resolve(answer).then(() => undefined, (error) => ({ error })));
  }

  /**
   * Waits for the first `count` statements sent (default: all); the error of
   * the first of them that failed. A statement waits only for those sent
   * before it: never for itself.
   */
  async failure(count = this.#answers.length): Promise<unknown> {
    for (const failed of await Promise.all(this.#answers.slice(0, count))) {
      if (failed) return failed.error;
    }
    return undefined;
  }
}

/** 64-bit integers and numerics as numbers: Relay's ids, times and counts fit in 2^53. */
const NUMBER_TYPES: Readonly<Record<number, (text: string) => unknown>> = {
  20: Number, // int8
  1700: Number, // numeric (sum)
  1016: (text) => text === "{}" ? [] : text.slice(1, -1).split(",").map(Number), // int8[]
};

const TYPES = {
  getTypeParser(oid: number, format?: string) {
    return NUMBER_TYPES[oid] ?? pg.types.getTypeParser(oid, format as "text");
  },
} as pg.CustomTypesConfig;

/** Options of {@link createPool}: `pg`'s, as Relay uses them. */
export interface PoolOptions {
  connectionString: string;
  password?: string;
  max: number;
  connectTimeoutMs: number;
  applicationName: string;
}

/**
 * A pool of connections. A connection that fails is dropped and replaced on
 * the next statement; the failure rejects the statements it carried, never
 * the process.
 */
export function createPool(options: PoolOptions): Sql {
  // In the URL: `pg` reads the URL after its options, and a URL without a
  // password would replace the one given beside it with "".
  const url = new URL(options.connectionString);
  if (options.password !== undefined && url.password === "") {
    url.password = encodeURIComponent(options.password);
  }
  const pool = new pg.Pool({
    connectionString: url.href,
    max: options.max,
    connectionTimeoutMillis: options.connectTimeoutMs,
    idleTimeoutMillis: 60_000,
    application_name: options.applicationName,
    types: TYPES,
    // See the module's comment; `pg` answers the statements in order.
    pipeline: true,
  });
  // A connection's error while idle or in use is reported to the statement
  // (or the next checkout); without a listener it would be thrown.
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  const sql = statements((...args) => runOn(pool, ...args)) as Sql;
  sql.begin = async <T>(
    modeOrFn: string | ((sql: TransactionSql) => Promise<T>),
    maybeFn?: (sql: TransactionSql) => Promise<T>,
  ): Promise<T> => {
    const mode = typeof modeOrFn === "string" ? ` ${modeOrFn}` : "";
    const fn = typeof modeOrFn === "string" ? maybeFn! : modeOrFn;
    const client = await pool.connect();
    const writes = new Writes(client);
    let broken: Error | undefined;
    try {
      const deferred = new Deferred();
      // Not awaited: BEGIN goes out with the first statement.
      writes.hold();
      deferred.add(client.query(`BEGIN${mode}`));
      let deferring = false;
      const tx = statements(async (...args) => {
        const before = deferred.count;
        writes.hold();
        const answer = runOn(client, ...args);
        // A statement awaited goes out now, with those held before it and
        // those sent in the same turn of the event loop.
        if (!deferring) writes.releaseSoon();
        try {
          return await answer;
        } catch (error) {
          // After a failed statement, the transaction's others fail as "aborted": report the cause.
          throw await deferred.failure(before) ?? error;
        }
      }) as TransactionSql;
      tx.defer = (query) => {
        deferring = true;
        try {
          deferred.add(query.then(() => {}));
        } finally {
          deferring = false;
        }
      };
      const value = await fn(tx);
      writes.hold();
      const commit = client.query("COMMIT");
      writes.release();
      // Handled now: it may fail (with the connection) while the deferred are awaited.
      commit.catch(() => {});
      // COMMIT of a failed transaction rolls it back (and reports no error).
      const failure = await deferred.failure();
      if (failure !== undefined) throw failure;
      await commit;
      return value;
    } catch (error) {
      try {
        writes.release();
        await client.query("ROLLBACK");
      } catch (rollback) {
        // The connection is gone or unusable: the pool must not hand it out again.
        broken = rollback as Error;
      }
      throw error;
    } finally {
      writes.release();
      client.release(broken ?? false);
    }
  };
  let ended: Promise<void> | null = null;
  sql.end = () => (ended ??= pool.end());
  return sql;
}
