import assert from "node:assert/strict";
import { EntityType, EventType } from "../../lib/audit.ts";
import { ENTITY_NAMES, EVENT_NAMES, eventByName } from "../../lib/audit_log.ts";
import { openStore } from "../../lib/storage/open.ts";
import { query, tempDir } from "../helpers.ts";

Deno.test("EVENT_NAMES and ENTITY_NAMES are the names the database's type tables hold", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/relay.sqlite`;
  await (await openStore(path, { now: 0 })).close();
  const table = (name: string) =>
    Object.fromEntries(
      query<{ id: number; name: string }>(path, `SELECT id, name FROM ${name} ORDER BY id`)
        .map((row) => [row.id, row.name]),
    );
  assert.deepEqual(table("event_types"), EVENT_NAMES);
  assert.deepEqual(table("entity_types"), ENTITY_NAMES);
  assert.deepEqual(Object.keys(EVENT_NAMES).map(Number), Object.values(EventType));
  assert.deepEqual(Object.keys(ENTITY_NAMES).map(Number), Object.values(EntityType));
});

Deno.test("eventByName() finds an event type by its exact name only", () => {
  assert.equal(eventByName("license.leased"), EventType.licenseLeased);
  assert.equal(eventByName("license.operator_released"), EventType.licenseOperatorReleased);
  assert.equal(eventByName("License.Leased"), undefined);
  assert.equal(eventByName("license.leased "), undefined);
  assert.equal(eventByName("constructor"), undefined);
});
