/**
 * Two servers and `relay add` on one database file. One server runs in the
 * test's process and one is a real process: in one process the synchronous
 * transactions of two servers would never overlap, while a second process
 * contends for the write lock for real.
 *
 * @module
 */

import assert from "node:assert/strict";
import { addMinted, dbPath, query, runInProcess, startServer, tempDir } from "../helpers.ts";
import { serveInProcess } from "./in_process.ts";

Deno.test("two relay serve (one in-process, one spawned) and a relay add share one database without a double lease", async () => {
  await using dir = await tempDir();
  await addMinted(dir.path, 20);
  await using first = await serveInProcess([], { database: dbPath(dir.path) });
  await using second = await startServer([], { cwd: dir.path });

  const claimAll = (prefix: string, count: number) =>
    Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const server = i % 2 === 0 ? first : second;
        const response = await fetch(`${server.url}/v1/nodes/${prefix}-${i}`, { method: "PUT" });
        await response.body?.cancel();
        return response.status;
      }),
    );
  // 60 clients race for 20 licenses on two servers while 5 more licenses are added.
  const [statuses, added] = await Promise.all([
    claimAll("node", 60),
    addMinted(dir.path, 5).catch((error) => error),
  ]);
  assert.ok(Array.isArray(added), `relay add failed while the servers ran: ${added}`);
  const created = statuses.filter((s) => s === 201).length;
  assert.deepEqual(
    statuses.filter((s) => s !== 201 && s !== 410),
    [],
    "only 201 or 410, never a 5xx",
  );
  assert.ok(created >= 20 && created <= 25, `${created} leases for 20 to 25 licenses`);

  // Every license that is left is claimed now, and then no more.
  const rest = await claimAll("late", 30);
  assert.equal(rest.filter((s) => s === 201).length, 25 - created);
  assert.deepEqual(rest.filter((s) => s !== 201 && s !== 410), []);

  const db = `${dir.path}/relay.sqlite`;
  const leases = query<{ node_id: number }>(
    db,
    "SELECT node_id FROM licenses WHERE node_id IS NOT NULL",
  );
  assert.equal(leases.length, 25, "all 25 licenses leased");
  assert.equal(new Set(leases.map((l) => l.node_id)).size, 25, "each to a different node");
  assert.equal(
    query(db, "SELECT count(*) AS n FROM audit_logs WHERE event_type_id = 3")[0].n,
    25,
    "one license.leased record per lease",
  );
  const ls = await runInProcess(["ls", "--json"], {
    now: new Date(),
    env: { RELAY_DATABASE: db },
  });
  assert.equal(ls.code, 0);
  assert.equal(
    JSON.parse(ls.stdout).filter((l: { status: string }) => l.status === "leased").length,
    25,
  );
  assert.equal((await first.stop()).code, 0);
  assert.equal((await second.stop()).status.code, 0);
});
