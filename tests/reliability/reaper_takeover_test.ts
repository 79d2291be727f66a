/**
 * Reliability, PostgreSQL only: a replica killed with SIGKILL leaves leases
 * behind; they expire by their TTL and a surviving replica's reaper frees
 * them (it takes the reaper's turn over from the dead one). The killed
 * replica is a real process, started first; the two survivors run
 * in-process on one clock the test moves, so no test waits for a lease to
 * expire.
 *
 * @module
 */

import assert from "node:assert/strict";
import { FakeClock, serveInProcess } from "../server/in_process.ts";
import { backendDatabase } from "./backends.ts";

/** The shortest TTL and cull interval `relay serve` takes. */
const TTL = ["--ttl", "30s", "--cull-interval", "100ms"];

async function status(url: string, method: string, node: string): Promise<number> {
  const response = await fetch(`${url}/v1/nodes/${node}`, { method });
  await response.body?.cancel();
  return response.status;
}

Deno.test("a replica killed with SIGKILL: its leases expire and a survivor's reaper frees them (postgres)", async () => {
  await using db = await backendDatabase("postgres");
  await db.add(10);
  const victim = await db.serve(TTL);
  const clock = new FakeClock();
  await using first = await serveInProcess(TTL, { database: db.database, clock });
  await using second = await serveInProcess(TTL, { database: db.database, clock });

  const orphans = Array.from({ length: 6 }, (_, i) => `orphan-${i}`);
  for (const node of orphans) assert.equal(await status(victim.url, "PUT", node), 201, node);
  const { status: exit } = await victim.stop("SIGKILL");
  assert.equal(exit.signal, "SIGKILL");

  // The survivors carry on: the four free licenses, then 410.
  for (const [i, server] of [first, second, first, second].entries()) {
    assert.equal(await status(server.url, "PUT", `live-${i}`), 201, `live-${i}`);
  }
  assert.equal(await status(first.url, "PUT", "late"), 410);

  // Past the TTL of every lease: a survivor's reaper frees them, with no request.
  clock.advance(31);
  const deadline = Date.now() + 20_000;
  while (await db.count("SELECT count(*) AS n FROM licenses WHERE node_id IS NOT NULL") > 0) {
    assert.ok(Date.now() < deadline, "timed out waiting for the reaper");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(
    await db.count("SELECT count(*) AS n FROM audit_logs WHERE event_type_id = 6"),
    10,
    "one license.lease_expired record per lease",
  );
  assert.equal(
    await db.count("SELECT count(*) AS n FROM audit_logs WHERE event_type_id = 10"),
    10,
    "one node.culled record per node",
  );
  assert.equal(
    await db.count("SELECT count(*) AS n FROM nodes WHERE deactivated_at IS NULL"),
    0,
    "no node left active",
  );
  // The orphans' licenses are free again for everyone.
  for (const [i, server] of [first, second].entries()) {
    for (let n = 0; n < 5; n++) {
      assert.equal(await status(server.url, "PUT", `after-${i}-${n}`), 201);
    }
  }
  assert.equal((await first.stop()).code, 0);
  assert.equal((await second.stop()).code, 0);
});
