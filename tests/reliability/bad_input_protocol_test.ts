/**
 * Bad input, the protocol: HTTP/1.0, broken request lines and versions,
 * garbage bytes, pipelining, an HTTP/2 preface and one-byte-at-a-time
 * requests over raw sockets; then 200 idle connections held open while 50
 * clients claim, heartbeat and release.
 *
 * @module
 */

import { BACKENDS } from "./backends.ts";
import { badInputServer } from "./bad_input_fixture.ts";
import {
  bytes,
  describe,
  firstStatus,
  HOSTNAME,
  readReplies,
  request,
  utf8,
  writeAll,
} from "./raw_http.ts";

for (const backend of BACKENDS) {
  Deno.test(`broken HTTP and idle connections never get a 5xx, a crash or a hang, and the server stays healthy (${backend})`, async (t) => {
    await using fx = await badInputServer(backend);

    await t.step("HTTP/1.0 and broken HTTP over raw sockets", async () => {
      const group = fx.group("protocol");
      const h10 = await fx.raw("GET /v1/health HTTP/1.0\r\n\r\n", { waitForCloseMs: 1000 });
      group.raw("HTTP/1.0 GET /v1/health", h10, [200]);
      group.check(
        "HTTP/1.0 status line",
        h10.received.startsWith("HTTP/1.0 200") || h10.received.startsWith("HTTP/1.1 200"),
        describe(h10),
      );
      group.eq("HTTP/1.0 without keep-alive: the server closes", h10.end, "eof");
      const keepAlive = await fx.raw(
        "GET /v1/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /v1/health HTTP/1.0\r\n\r\n",
        { want: 2, waitForCloseMs: 1000 },
      );
      group.eq(
        "HTTP/1.0 keep-alive: two responses on one connection",
        keepAlive.responses.map((r) => r.status),
        [200, 200],
      );
      group.eq(
        "HTTP/1.0 keep-alive, then a plain HTTP/1.0 request: closed after it",
        keepAlive.end,
        "eof",
      );
      const put10 = await fx.raw("PUT /v1/nodes/h10 HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
      if (group.raw("HTTP/1.0 PUT", put10, [201, 410]) && firstStatus(put10) === 201) {
        fx.granted.add("h10");
      }
      group.raw(
        "HTTP/1.0 PUT again",
        await fx.raw("PUT /v1/nodes/h10 HTTP/1.0\r\nContent-Length: 0\r\n\r\n"),
        firstStatus(put10) === 201 ? [202] : [201, 410],
      );
      group.raw("HTTP/1.0 DELETE", await fx.raw("DELETE /v1/nodes/h10 HTTP/1.0\r\n\r\n"), [
        204,
        404,
      ]);
      await fx.cleanup(group, "HTTP/1.0", "h10");

      const cases: [string, string | Uint8Array, number[], boolean][] = [
        ["request line without a version", "GET /v1/health\r\n\r\n", [400], true],
        ["request line without a target", "GET HTTP/1.1\r\nHost: relay\r\n\r\n", [400], true],
        ["relative target", "GET v1/health HTTP/1.1\r\nHost: relay\r\n\r\n", [400], true],
        [
          "two spaces after the method",
          "GET  /v1/health HTTP/1.1\r\nHost: relay\r\n\r\n",
          [400],
          true,
        ],
        ["lower-case http/1.1", "GET /v1/health http/1.1\r\nHost: relay\r\n\r\n", [400], true],
        ["HTTP/1.2", "GET /v1/health HTTP/1.2\r\nHost: relay\r\n\r\n", [400, 505], true],
        ["HTTP/2.0 as text", "GET /v1/health HTTP/2.0\r\nHost: relay\r\n\r\n", [400, 505], true],
        ["HTTP/9.9", "GET /v1/health HTTP/9.9\r\nHost: relay\r\n\r\n", [400, 505], true],
        ["binary garbage", bytes([0, 1, 2, 0xff, 0xfe, 0x80, 13, 10, 13, 10]), [400], true],
        [
          "1 kB of pseudo-random bytes",
          bytes(Array.from({ length: 1024 }, (_, i) => (i * 7919 + 13) % 256), "\r\n\r\n"),
          [400],
          true,
        ],
        [
          "TLS ClientHello on plain HTTP",
          bytes(
            [0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03],
            new Array(32).fill(0),
          ),
          [400],
          true,
        ],
        ["LF-only line endings", "GET /v1/health HTTP/1.1\nHost: relay\n\n", [200, 400], true],
        ["HTTP/1.1 without Host", "GET /v1/health HTTP/1.1\r\n\r\n", [200, 400], false],
        ["empty Host", "GET /v1/health HTTP/1.1\r\nHost:\r\n\r\n", [200, 400], false],
        ["two Host headers", "GET /v1/health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", [400], true],
        [
          "Host with user info",
          "GET /v1/health HTTP/1.1\r\nHost: user@relay\r\n\r\n",
          [200, 400],
          false,
        ],
        ["Host as IPv6 literal", "GET /v1/health HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", [200], false],
        ["300-character Host", `GET /v1/health HTTP/1.1\r\nHost: ${"h".repeat(300)}\r\n\r\n`, [
          200,
          400,
        ], false],
        [
          "Host with a control byte",
          bytes("GET /v1/health HTTP/1.1\r\nHost: a", [1], "b\r\n\r\n"),
          [
            400,
          ],
          true,
        ],
        ["absolute-form target", "GET http://elsewhere/v1/health HTTP/1.1\r\nHost: relay\r\n\r\n", [
          200,
        ], false],
        [
          "absolute-form target with a space",
          "GET http://a b/v1/health HTTP/1.1\r\nHost: relay\r\n\r\n",
          [400],
          true,
        ],
        [
          "OPTIONS *",
          "OPTIONS * HTTP/1.1\r\nHost: relay\r\n\r\n",
          [200, 204, 400, 404, 405],
          false,
        ],
        [
          "Upgrade: websocket on /v1/health",
          "GET /v1/health HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
          [200, 400, 426],
          false,
        ],
        [
          "Upgrade: h2c",
          "GET /v1/health HTTP/1.1\r\nHost: relay\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
          [200, 400],
          false,
        ],
      ];
      for (const [label, data, allowed, closeOk] of cases) {
        group.raw(label, await fx.raw(data), allowed, closeOk);
      }
      const noHost = await fx.raw("GET /v1/health HTTP/1.1\r\n\r\n");
      fx.notes.push(`HTTP/1.1 without Host: ${firstStatus(noHost)} (RFC 9112 asks for 400)`);

      const pipelined = await fx.raw(
        request("GET", "/v1/health") + request("PUT", "/v1/nodes/..") +
          request("GET", "/v1/health"),
        { want: 3 },
      );
      group.eq("three pipelined requests", pipelined.responses.map((r) => r.status), [
        200,
        404,
        200,
      ]);

      const preface = await fx.raw("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {
        until: (received) => received.length >= 9 || received.startsWith("HTTP/1"),
      });
      // HTTP/2 with prior knowledge: a SETTINGS frame (type 4), or an HTTP/1 refusal.
      const isSettings = preface.received.length >= 9 && preface.received.charCodeAt(3) === 4;
      group.check(
        "HTTP/2 prior-knowledge preface: SETTINGS frame or a 4xx",
        isSettings || (firstStatus(preface) ?? 0) >= 400 && (firstStatus(preface) ?? 0) < 500,
        describe(preface),
      );
      if (isSettings) {
        fx.notes.push(
          "HTTP/2 prior-knowledge preface over plain TCP: the server speaks h2c (answers SETTINGS)",
        );
      }

      // Slowloris-lite: one byte at a time, ~1 s in all.
      const slow = async (text: string, label: string, allowed: number[]) => {
        fx.exchange();
        const conn = await Deno.connect({ hostname: HOSTNAME, port: fx.port });
        try {
          const data = utf8.encode(text);
          const began = performance.now();
          for (let i = 0; i < data.length && performance.now() - began < 2_000; i++) {
            await writeAll(conn, data.subarray(i, i + 1));
            await new Promise((resolve) =>
              setTimeout(resolve, Math.max(1, Math.floor(1_000 / data.length)))
            );
          }
          const result = await readReplies(conn, {});
          group.raw(label, result, allowed);
          return firstStatus(result);
        } finally {
          conn.close();
        }
      };
      await slow(request("GET", "/v1/health"), "GET /v1/health one byte at a time", [200]);
      if (
        (await slow(
          request("PUT", "/v1/nodes/slow", ["Host: relay", "Content-Length: 0"]),
          "PUT one byte at a time",
          [201],
        )) === 201
      ) {
        fx.granted.add("slow");
      }
      group.raw("DELETE after the slow PUT", await fx.raw(request("DELETE", "/v1/nodes/slow")), [
        204,
      ]);
      await fx.checkHealth(group, "protocol");
      group.finish();
    });

    await t.step("200 idle connections while 50 clients claim, heartbeat and release", async () => {
      const group = fx.group("idle connections");
      const free = Number(
        (await fx.rows<{ n: number }>(
          "SELECT count(*) AS n FROM licenses WHERE pool_id IS NULL AND node_id IS NULL",
        ))[0].n,
      );
      group.eq("every unpooled license is free again", free, fx.unpooled.length);
      const idle: Deno.Conn[] = [];
      try {
        for (let i = 0; i < 200; i++) {
          const conn = await Deno.connect({ hostname: HOSTNAME, port: fx.port });
          idle.push(conn);
          // Half of them send half a request line.
          if (i % 2 === 1) await writeAll(conn, utf8.encode("GET /v1/hea"));
        }
        group.check("200 idle connections open", idle.length === 200);
        await fx.checkHealth(group, "opening 200 idle connections");

        const clients = Array.from({ length: 50 }, async (_, i) => {
          const path = `/v1/nodes/idle-${i}`;
          const steps: [string, number][] = [];
          let slowest = 0;
          for (const method of ["PUT", "PUT", "DELETE"]) {
            const reply = await fx.send(method, path);
            steps.push([method, reply.status]);
            slowest = Math.max(slowest, reply.ms);
          }
          return { i, steps, slowest };
        });
        const results = await Promise.all(clients);
        const expectedGrants = Math.min(50, free);
        let grants = 0;
        for (const { i, steps, slowest } of results) {
          const statuses = steps.map(([, status]) => status);
          for (const status of statuses) {
            if (status >= 500) fx.serverErrors.push(`idle client ${i}: ${status}`);
          }
          if (statuses[0] === 201) {
            grants++;
            fx.granted.add(`idle-${i}`);
            group.eq(`client ${i}: claim, heartbeat, release`, statuses, [201, 202, 204]);
          } else {
            group.eq(`client ${i}: no license free`, statuses, [410, 410, 404]);
          }
          group.check(
            `client ${i}: each request within 5 s`,
            slowest < 5_000,
            `${Math.round(slowest)} ms`,
          );
        }
        group.eq("clients that got a license", grants, expectedGrants);
        const raw200 = await fx.raw(request("GET", "/v1/health"));
        group.raw("raw GET /v1/health while idle connections are open", raw200, [200]);
        await fx.checkHealth(group, "50 clients beside 200 idle connections");
      } finally {
        for (const conn of idle) {
          try {
            conn.close();
          } catch {
            // Already closed.
          }
        }
      }
      await fx.checkHealth(group, "closing the idle connections");
      group.finish();
    });

    await fx.closingSteps(t, { protocol: 35, "idle connections": 100 });
  });
}
