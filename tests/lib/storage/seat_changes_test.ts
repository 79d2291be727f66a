/**
 * `StatusReads.seatChanges` (the status page's history): seats gained minus
 * lost, per bucket of the width asked for.
 *
 * @module
 */

import assert from "node:assert/strict";
import { EntityType, EventType } from "../../../lib/audit.ts";
import { openStore } from "../../../lib/storage/open.ts";

Deno.test("seatChanges groups audit rows into buckets of the width asked for", async () => {
  const store = await openStore(":memory:", { now: 1_800_000_000 });
  try {
    const rows: [EventType, number][] = [
      [EventType.licenseLeased, 1_800_000_481],
      [EventType.licenseLeased, 1_800_000_500],
      [EventType.licenseReleased, 1_800_000_539],
      [EventType.licenseLeased, 1_800_000_540],
      [EventType.licenseLeaseExpired, 1_800_000_600],
      [EventType.nodeHeartbeatPing, 1_800_000_601],
    ];
    await store.transaction(async (tx) => {
      for (const [event, now] of rows) {
        await tx.audit({ event, entity: EntityType.license, entityId: 1, poolId: null, now });
      }
    });
    const changes = await store.read((tx) =>
      tx.seatChanges({ since: 1_800_000_000, bucketSeconds: 60 })
    );
    assert.deepEqual(changes.map((change) => ({ ...change })), [
      { at: 1_800_000_480, delta: 1 },
      { at: 1_800_000_540, delta: 1 },
      { at: 1_800_000_600, delta: -1 },
    ]);
  } finally {
    await store.close();
  }
});
