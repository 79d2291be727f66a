import assert from "node:assert/strict";
import { openStore, type Store } from "../../lib/store.ts";
import { createCommitter, MAX_GROUP } from "../../server/group_commit.ts";
import { query, tempDir } from "../helpers.ts";

const T0 = 1_800_000_000;

function insertPool(store: Store, name: string): number {
  return store.transaction(() => store.insertPool(name, T0).id);
}

/** Counts the groups the store runs. */
function countGroups(store: Store): { count: number } {
  const counter = { count: 0 };
  const group = store.group.bind(store);
  store.group = <T>(fn: () => T): T => {
    counter.count++;
    return group(fn);
  };
  return counter;
}

Deno.test("createCommitter() runs operations queued together in one group, each atomic on its own", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = openStore(path, { now: T0 });
  try {
    const groups = countGroups(store);
    const commit = createCommitter(store);
    const results = await Promise.allSettled([
      commit(() => insertPool(store, "a")),
      commit(() =>
        store.transaction(() => {
          store.insertPool("doomed", T0);
          throw new Error("boom");
        })
      ),
      commit(() => insertPool(store, "b")),
    ]);
    assert.equal(groups.count, 1, "one transaction, one fsync");
    assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
    assert.match(String((results[1] as PromiseRejectedResult).reason), /boom/);
    assert.deepEqual(
      query(path, "SELECT name FROM pools ORDER BY id").map((row) => row.name),
      ["a", "b"],
      "the failed operation left nothing behind, the others committed",
    );
    // Audit rows went with their operations.
    assert.equal(query(path, "SELECT count(*) AS n FROM audit_logs")[0].n, 2);
  } finally {
    store.close();
  }
});

Deno.test("createCommitter() acknowledges nothing when the group's commit fails", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  // Deferred foreign keys are checked at COMMIT: a dangling pool id fails it.
  const store = openStore(path, { now: T0, pragmas: { defer_foreign_keys: "ON" } });
  try {
    const commit = createCommitter(store);
    const results = await Promise.allSettled([
      commit(() => insertPool(store, "kept-only-if-committed")),
      commit(() =>
        store.transaction(() =>
          store.insertLicense({
            guid: "g",
            file: new Uint8Array([1]),
            key: "K",
            poolId: 999,
            fileIssuedAt: null,
            fileExpiresAt: null,
            expiresAt: null,
          }, T0)
        )
      ),
    ]);
    assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
    assert.equal(
      (results[0] as PromiseRejectedResult).reason.code,
      "database_unusable",
      "a typed database error",
    );
  } finally {
    store.close();
  }
  assert.equal(query(path, "SELECT count(*) AS n FROM pools")[0].n, 0);
  assert.equal(query(path, "SELECT count(*) AS n FROM licenses")[0].n, 0);
});

Deno.test("createCommitter() splits a large queue into groups of at most MAX_GROUP", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  const store = openStore(path, { now: T0 });
  try {
    const groups = countGroups(store);
    const commit = createCommitter(store);
    const count = MAX_GROUP * 2 + 1;
    await Promise.all(
      Array.from({ length: count }, (_, i) => commit(() => insertPool(store, `p${i}`))),
    );
    assert.equal(groups.count, 3);
  } finally {
    store.close();
  }
  assert.equal(query(path, "SELECT count(*) AS n FROM pools")[0].n, MAX_GROUP * 2 + 1);
});
