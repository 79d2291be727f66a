import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { EntityType, EventType } from "../../../lib/audit.ts";
import type { Tx } from "../../../lib/storage/store.ts";
import { openSqliteStore } from "../../../lib/storage/sqlite/sqlite_store.ts";
import { SqliteTx } from "../../../lib/storage/sqlite/statements.ts";
import { MAX_GROUP, TransactionQueue } from "../../../lib/storage/sqlite/transactions.ts";
import { query, tempDir } from "../../helpers.ts";

const T0 = 1_800_000_000;

/** A queue on a fresh, migrated database, counting its commits. */
async function withQueue(
  options: { groupCommit: boolean; pragmas?: Record<string, string> },
  fn: (queue: TransactionQueue, path: string, commits: { count: number }) => Promise<void>,
) {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  await openSqliteStore(path, { now: T0 }).close();
  const db = new DatabaseSync(path);
  for (const [key, value] of Object.entries(options.pragmas ?? {})) {
    db.exec(`PRAGMA ${key} = ${value}`);
  }
  const commits = { count: 0 };
  const queue = new TransactionQueue(db, new SqliteTx(db, { audit: true }), {
    path,
    groupCommit: options.groupCommit,
    onCommit: () => commits.count++,
  });
  try {
    await fn(queue, path, commits);
    await queue.drained();
  } finally {
    db.close();
  }
}

/** Inserts a pool and its audit row. */
async function addPool(tx: Tx, name: string): Promise<number> {
  const pool = await tx.insertPool(name, T0);
  await tx.audit({
    event: EventType.poolAdded,
    entity: EntityType.pool,
    entityId: pool.id,
    poolId: null,
    now: T0,
  });
  return pool.id;
}

Deno.test("TransactionQueue with group commit runs transactions queued together in one commit, each atomic on its own", async () => {
  await withQueue({ groupCommit: true }, async (queue, path, commits) => {
    const results = await Promise.allSettled([
      queue.run("durable", (tx) => addPool(tx, "a")),
      queue.run("durable", async (tx) => {
        await addPool(tx, "doomed");
        throw new Error("boom");
      }),
      queue.run("durable", (tx) => addPool(tx, "b")),
    ]);
    assert.equal(commits.count, 1, "one transaction, one fsync");
    assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
    assert.match(String((results[1] as PromiseRejectedResult).reason), /boom/);
    assert.deepEqual(
      query(path, "SELECT name FROM pools ORDER BY id").map((row) => row.name),
      ["a", "b"],
      "the failed transaction left nothing behind, the others committed",
    );
    // Audit rows went with their transactions.
    assert.equal(query(path, "SELECT count(*) AS n FROM audit_logs")[0].n, 2);
  });
});

Deno.test("TransactionQueue without group commit commits each transaction on its own", async () => {
  await withQueue({ groupCommit: false }, async (queue, path, commits) => {
    const results = await Promise.allSettled([
      queue.run("durable", (tx) => addPool(tx, "a")),
      queue.run("durable", async (tx) => {
        await addPool(tx, "doomed");
        throw new Error("boom");
      }),
      queue.run("durable", (tx) => addPool(tx, "b")),
      queue.run("read", (tx) => tx.licenses()),
    ]);
    assert.equal(commits.count, 2, "one commit per writing transaction that succeeded");
    assert.deepEqual(results.map((r) => r.status), [
      "fulfilled",
      "rejected",
      "fulfilled",
      "fulfilled",
    ]);
    assert.deepEqual(
      query(path, "SELECT name FROM pools ORDER BY id").map((row) => row.name),
      ["a", "b"],
    );
  });
});

Deno.test("TransactionQueue acknowledges nothing when the group's commit fails", async () => {
  // Deferred foreign keys are checked at COMMIT: a dangling pool id fails it.
  const pragmas = { defer_foreign_keys: "ON" };
  await withQueue({ groupCommit: true, pragmas }, async (queue, path, commits) => {
    const results = await Promise.allSettled([
      queue.run("durable", (tx) => addPool(tx, "kept-only-if-committed")),
      queue.run("durable", (tx) =>
        tx.insertLicense({
          guid: "g",
          file: new Uint8Array([1]),
          key: "K",
          poolId: 999,
          fileIssuedAt: null,
          fileExpiresAt: null,
          expiresAt: null,
        }, T0)),
    ]);
    assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
    assert.equal(
      (results[0] as PromiseRejectedResult).reason.code,
      "database_unusable",
      "a typed database error",
    );
    assert.equal(commits.count, 0);
    assert.equal(query(path, "SELECT count(*) AS n FROM pools")[0].n, 0);
    assert.equal(query(path, "SELECT count(*) AS n FROM licenses")[0].n, 0);
  });
});

Deno.test("TransactionQueue splits a large queue into groups of at most MAX_GROUP", async () => {
  await withQueue({ groupCommit: true }, async (queue, path, commits) => {
    const count = MAX_GROUP * 2 + 1;
    await Promise.all(
      Array.from({ length: count }, (_, i) => queue.run("durable", (tx) => addPool(tx, `p${i}`))),
    );
    assert.equal(commits.count, 3);
    assert.equal(query(path, "SELECT count(*) AS n FROM pools")[0].n, count);
  });
});

Deno.test("TransactionQueue runs a transaction queued by another's body after it, never inside it", async () => {
  await withQueue({ groupCommit: true }, async (queue, path) => {
    const order: string[] = [];
    let inner: Promise<unknown> | undefined;
    await queue.run("durable", async (tx) => {
      order.push("outer start");
      inner = queue.run("durable", async (tx2) => {
        order.push("inner");
        return await addPool(tx2, "inner");
      });
      await addPool(tx, "outer");
      order.push("outer end");
    });
    await inner;
    assert.deepEqual(order, ["outer start", "outer end", "inner"]);
    assert.deepEqual(
      query(path, "SELECT name FROM pools ORDER BY id").map((row) => row.name),
      ["outer", "inner"],
    );
  });
});
