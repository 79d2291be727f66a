/**
 * Two servers with different ttls on one database never cut each other's
 * leases: each lease keeps the expiry it was granted or extended with. On
 * SQLite and on PostgreSQL (rows compared between the engines, see
 * scenario_support.ts).
 */

import assert from "node:assert/strict";
import { createLogger } from "../../lib/logger.ts";
import { openStore } from "../../lib/storage/open.ts";
import { createHandler } from "../../server/app.ts";
import { startReaper } from "../../server/reaper.ts";
import { scenario } from "./scenario_support.ts";

const T0 = 1_800_000_000;

scenario(
  "a lease granted with --ttl 10m is neither reaped nor cut by a server with --ttl 30s",
  async (_t, s) => {
    const path = s.db.database;
    const clock = { seconds: T0 };
    const logger = createLogger({
      verbosity: 0,
      json: true,
      write: () => {},
      now: () => new Date(),
    });
    const stores = [
      await openStore(path, { now: T0, groupCommit: true }),
      await openStore(path, { now: T0, groupCommit: true }),
    ];
    try {
      await stores[0].transaction((tx) =>
        tx.insertLicense({
          guid: "lic-1",
          file: new TextEncoder().encode("file-1"),
          key: "KEY-1",
          poolId: null,
          fileIssuedAt: null,
          fileExpiresAt: null,
          expiresAt: null,
        }, T0)
      );
      const servers = await Promise.all(
        [600, 30].map((ttl, i) =>
          createHandler({
            store: stores[i],
            logger,
            now: () => clock.seconds,
            config: {
              pool: null,
              signingSecret: null,
              policy: { ttl, heartbeats: true, strategy: "fifo" },
            },
          })
        ),
      );
      const put = async (server: number, node: string) => {
        const response = await servers[server](
          new Request(`http://relay.test/v1/nodes/${node}`, { method: "PUT" }),
        );
        return { status: response.status, body: await response.json() };
      };
      const reaper = startReaper({
        store: stores[1],
        ttl: 30,
        intervalMs: 3_600_000,
        now: () => clock.seconds,
        logger,
      });
      try {
        const created = await put(0, "a");
        assert.equal(created.status, 201);
        assert.equal(created.body.expires_at, T0 + 600);

        clock.seconds += 300;
        assert.deepEqual(await reaper.runOnce(), { reaped: 0, pruned: 0 });
        const other = await put(1, "b");
        assert.deepEqual(other, { status: 410, body: { error: "no licenses available" } });
        // The holder's heartbeat, through the short-ttl server: an extension, not a new lease.
        assert.deepEqual(await put(1, "a"), {
          status: 202,
          body: { expires_at: T0 + 330, expires_in: 30 },
        });
        assert.deepEqual(
          await s.db.rows(
            "SELECT fingerprint, lease_expires_at FROM nodes WHERE deactivated_at IS NULL",
          ),
          [{ fingerprint: "a", lease_expires_at: T0 + 330 }],
        );

        clock.seconds += 30;
        assert.deepEqual(await reaper.runOnce(), { reaped: 1, pruned: 0 });
        assert.equal((await put(1, "b")).status, 201);
      } finally {
        await reaper.stop();
      }
    } finally {
      for (const store of stores) await store.close();
    }
  },
);
