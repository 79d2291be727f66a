/**
 * Bad input, the Relay-Pool header: unknown, odd and non-ASCII values through
 * fetch, and header shapes fetch cannot send over a raw socket. A bad value
 * gets 400 and never releases another pool's lease.
 *
 * @module
 */

import { BACKENDS } from "./backends.ts";
import { badInputServer, ERR, leasedKey } from "./bad_input_fixture.ts";
import { firstStatus, latin1, request, utf8 } from "./raw_http.ts";

for (const backend of BACKENDS) {
  Deno.test(`bad Relay-Pool headers never get a 5xx, a crash or a hang, and the server stays healthy (${backend})`, async (t) => {
    await using fx = await badInputServer(backend);

    await t.step("Relay-Pool header values", async () => {
      const group = fx.group("pool header");
      // A node holding a prod lease: a bad pool header on its DELETE must not release it.
      const holder = await fx.send("PUT", "/v1/nodes/pool-holder", {
        headers: { "Relay-Pool": "prod" },
      });
      if (group.status("holder claims in prod", holder.status, [201])) {
        fx.granted.add("pool-holder");
      }

      /** Header values as byte strings: each code unit is one byte on the wire. */
      const asBytes = (text: string) => latin1(utf8.encode(text));
      const unknown: [string, string][] = [
        ["SQL: ' OR 1=1 --", "' OR 1=1 --"],
        ["SQL: prod' OR '1'='1", "prod' OR '1'='1"],
        ['SQL: prod"; DROP TABLE pools; --', 'prod"; DROP TABLE pools; --'],
        ["SQL: '; DELETE FROM licenses; --", "'; DELETE FROM licenses; --"],
        ["percent-encoded prod%27", "prod%27"],
        ["percent-encoded %70rod", "%70rod"],
        ["single quote", "'"],
        ["double quote", '"'],
        ["backtick", "`"],
        ['quoted "prod"', '"prod"'],
        ["quoted 'prod'", "'prod'"],
        ["1 char", "p"],
        ["10 kB", "x".repeat(10_240)],
        ["upper case PROD", "PROD"],
        ["mixed case Prod", "Prod"],
        ["list prod,prod", "prod,prod"],
        ["list prod, prod", "prod, prod"],
        ["prod + NBSP (not HTTP whitespace)", "prod\u00a0"],
        ["UTF-8 bytes: 日本", asBytes("日本")],
        ["UTF-8 bytes: emoji", asBytes("😀")],
        ["UTF-8 bytes: RTL override", asBytes("prod\u202e")],
        ["UTF-8 bytes: zero-width space", asBytes("prod\u200b")],
        // Byte 0xE9 alone is not UTF-8 for "é": the café pool must not match it.
        ["Latin-1 byte for café (invalid UTF-8)", "caf\u00e9"],
      ];
      for (const [label, value] of unknown) {
        const headers = { "Relay-Pool": value };
        const put = await fx.send("PUT", "/v1/nodes/pool-bad", { headers });
        group.status(`${label}: PUT`, put.status, [400]);
        group.eq(`${label}: PUT body`, put.body, ERR.invalidPool);
        if (put.status === 201) {
          fx.granted.add("pool-bad");
          await fx.send("DELETE", "/v1/nodes/pool-bad", { headers });
        }
        // The node is looked up first, as the reference Relay does.
        const unknownNode = await fx.send("DELETE", "/v1/nodes/pool-nobody", { headers });
        group.status(`${label}: DELETE of a node without a lease`, unknownNode.status, [404]);
        group.eq(
          `${label}: DELETE of a node without a lease body`,
          unknownNode.body,
          ERR.claimNotFound,
        );
        const held = await fx.send("DELETE", "/v1/nodes/pool-holder", { headers });
        group.status(`${label}: DELETE of a leasing node`, held.status, [400]);
        group.eq(`${label}: DELETE of a leasing node body`, held.body, ERR.invalidPool);
      }
      await fx.checkHealth(group, "unknown pools");

      // Valid values: [label, header value, the pool it selects].
      const valid: [string, string, string | null][] = [
        ["the real pool prod", "prod", "prod"],
        ["prod with surrounding spaces", "  prod  ", "prod"],
        ["only spaces: as if absent", "     ", null],
        ["only a tab: as if absent", "\t", null],
        ["empty: as if absent", "", null],
        ["UTF-8 bytes of café", asBytes("café"), "café"],
      ];
      for (const [index, [label, value, pool]] of valid.entries()) {
        await fx.claimCycle(group, label, `/v1/nodes/pool-ok-${index}`, `pool-ok-${index}`, {
          "Relay-Pool": value,
        }, pool);
      }
      fx.notes.push(
        "Relay-Pool: fetch only takes byte strings (a code point above U+00FF throws a TypeError " +
          "before sending), so non-ASCII values were sent as raw UTF-8 bytes spelled as byte strings",
      );

      // Raw sockets: header shapes fetch cannot send.
      const rawCases: [string, string[], number, string | null][] = [
        ["two Relay-Pool headers", ["Relay-Pool: prod", "Relay-Pool: prod"], 400, "invalid"],
        ["empty Relay-Pool header: as if absent", ["Relay-Pool:"], 201, null],
        ["spaces-only Relay-Pool header: as if absent", ["Relay-Pool:      "], 201, null],
        ["lower-case header name", ["relay-pool: prod"], 201, "prod"],
        ["Relay_Pool (underscore) is another header", ["Relay_Pool: prod"], 201, null],
        ["UTF-8 café", ["Relay-Pool: café"], 201, "café"],
      ];
      for (const [index, [label, headers, status, pool]] of rawCases.entries()) {
        const fingerprint = `pool-raw-${index}`;
        const result = await fx.raw(
          request("PUT", `/v1/nodes/${fingerprint}`, ["Host: relay", ...headers]),
        );
        group.raw(`${label}: PUT`, result, [status]);
        if (status === 201) {
          const key = leasedKey({
            status: firstStatus(result) ?? 0,
            body: result.responses[0]?.body ?? "",
          });
          group.eq(
            `${label}: pool of the leased license`,
            key === null ? "none" : fx.poolOfKey.get(key),
            pool,
          );
        } else {
          group.eq(`${label}: body`, result.responses[0]?.body ?? null, ERR.invalidPool);
        }
        const release = await fx.raw(
          request("DELETE", `/v1/nodes/${fingerprint}`, ["Host: relay", ...headers]),
        );
        group.raw(`${label}: DELETE`, release, status === 201 ? [204] : [404]);
        if (firstStatus(result) === 201) fx.granted.add(fingerprint);
        if (firstStatus(result) === 201 && firstStatus(release) !== 204) {
          await fx.cleanup(group, label, fingerprint);
        }
      }

      const released = await fx.send("DELETE", "/v1/nodes/pool-holder", {
        headers: { "Relay-Pool": "prod" },
      });
      group.status("holder releases in prod", released.status, [204]);
      await fx.checkHealth(group, "pool headers");
      group.finish();
    });

    await fx.closingSteps(t, { "pool header": 200 });
  });
}
