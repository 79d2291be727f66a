/**
 * Bad input, sizes and framing: large headers and bodies through fetch, and
 * lying, conflicting or broken Content-Length and Transfer-Encoding over raw
 * sockets, each followed by a cleanup that records any lease it granted.
 *
 * @module
 */

import { BACKENDS } from "./backends.ts";
import { badInputServer } from "./bad_input_fixture.ts";
import { describe, firstStatus, HOSTNAME, request, utf8, writeAll } from "./raw_http.ts";

for (const backend of BACKENDS) {
  Deno.test(`odd header and body sizes and framing never get a 5xx, a crash or a hang, and the server stays healthy (${backend})`, async (t) => {
    await using fx = await badInputServer(backend);

    await t.step("header and body sizes, framing", async () => {
      const group = fx.group("headers and bodies");
      const big = "a".repeat(20 * 1024);
      group.status(
        "one 20 kB header on GET /v1/health",
        (await fx.send("GET", "/v1/health", { headers: { "X-Big": big } })).status,
        [200, 400, 431],
      );
      const bigClaim = await fx.send("PUT", "/v1/nodes/big-header", { headers: { "X-Big": big } });
      group.status("one 20 kB header on PUT", bigClaim.status, [201, 400, 431]);
      if (bigClaim.status === 201) fx.granted.add("big-header");
      group.status(
        "DELETE with one 20 kB header",
        (await fx.send("DELETE", "/v1/nodes/big-header", { headers: { "X-Big": big } })).status,
        bigClaim.status === 201 ? [204] : [404, 400, 431],
      );

      const many: Record<string, string> = {};
      for (let i = 0; i < 200; i++) many[`X-Header-${i}`] = "v";
      const manyReply = await fx.send("GET", "/v1/health", { headers: many });
      group.status("200 headers", manyReply.status, [200, 400, 431]);
      fx.notes.push(`200 headers through fetch: ${manyReply.status}`);
      const ninety = Array.from({ length: 90 }, (_, i) => `X-Header-${i}: v`);
      group.raw(
        "90 headers (raw)",
        await fx.raw(request("GET", "/v1/health", ["Host: relay", ...ninety])),
        [200],
      );

      const block: Record<string, string> = {};
      for (let i = 0; i < 40; i++) block[`X-Block-${i}`] = "b".repeat(2048);
      let blockStatus: number | string;
      try {
        blockStatus = (await fx.send("GET", "/v1/health", { headers: block })).status;
      } catch (error) {
        blockStatus = `fetch failed: ${error}`;
      }
      group.check(
        "80 kB header block (fetch): 400/431 or closed",
        blockStatus === 400 || blockStatus === 431 || typeof blockStatus === "string",
        String(blockStatus),
      );
      if (typeof blockStatus === "number" && blockStatus >= 500) {
        fx.serverErrors.push(`80 kB header block: ${blockStatus}`);
      }
      fx.notes.push(`80 kB header block through fetch: ${blockStatus}`);
      const rawBlock = (kb: number) =>
        request("GET", "/v1/health", [
          "Host: relay",
          ...Array.from({ length: kb / 2 }, (_, i) => `X-Block-${i}: ${"b".repeat(2048)}`),
        ]);
      const block80 = await fx.raw(rawBlock(80));
      group.raw("80 kB header block (raw)", block80, [400, 431], true);
      fx.notes.push(
        `80 kB header block (raw): ${firstStatus(block80) ?? "no response"} (${block80.end})`,
      );
      group.raw("500 kB header block (raw)", await fx.raw(rawBlock(500)), [400, 431], true);
      await fx.checkHealth(group, "large headers");

      const megabyte = new Uint8Array(1024 * 1024).fill(0x61);
      const bodyClaim = await fx.send("PUT", "/v1/nodes/body-1mb", { body: megabyte });
      group.status("1 MB body on PUT", bodyClaim.status, [201, 400, 413]);
      if (bodyClaim.status === 201) fx.granted.add("body-1mb");
      group.status(
        "1 MB body on DELETE",
        (await fx.send("DELETE", "/v1/nodes/body-1mb", { body: megabyte })).status,
        bodyClaim.status === 201 ? [204] : [404, 400, 413],
      );
      group.status(
        "1 MB JSON garbage with Content-Type",
        (await fx.send("PUT", "/v1/nodes/body-json", {
          body: "{".repeat(1024 * 1024),
          headers: { "Content-Type": "application/json" },
        })).status,
        [201, 400, 413],
      );
      await fx.cleanup(group, "1 MB JSON garbage", "body-json");
      group.status(
        "1 MB body on POST /v1/health",
        (await fx.send("POST", "/v1/health", { body: megabyte })).status,
        [405, 413],
      );
      await fx.checkHealth(group, "large bodies");

      // Framing over raw sockets: [label, fingerprint, request, allowed statuses, closing without a response is fine].
      const framing: [string, string, string, number[], boolean][] = [
        [
          "lying Content-Length, then close",
          "cl-lie",
          request("PUT", "/v1/nodes/cl-lie", ["Host: relay", "Content-Length: 100"], "abc"),
          [201, 400, 408],
          true,
        ],
        [
          "Content-Length -1",
          "cl-neg",
          request("PUT", "/v1/nodes/cl-neg", ["Host: relay", "Content-Length: -1"]),
          [400],
          true,
        ],
        [
          "Content-Length abc",
          "cl-abc",
          request("PUT", "/v1/nodes/cl-abc", ["Host: relay", "Content-Length: abc"]),
          [400],
          true,
        ],
        [
          "Content-Length beyond 64 bits",
          "cl-huge",
          request("PUT", "/v1/nodes/cl-huge", [
            "Host: relay",
            "Content-Length: 99999999999999999999999",
          ]),
          [400, 413],
          true,
        ],
        [
          "two different Content-Lengths",
          "cl-two",
          request("PUT", "/v1/nodes/cl-two", [
            "Host: relay",
            "Content-Length: 1",
            "Content-Length: 2",
          ], "ab"),
          [400],
          true,
        ],
        [
          "Content-Length and Transfer-Encoding",
          "cl-te",
          request("PUT", "/v1/nodes/cl-te", [
            "Host: relay",
            "Content-Length: 3",
            "Transfer-Encoding: chunked",
          ], "abc"),
          [400],
          true,
        ],
        [
          "chunked garbage",
          "te-garbage",
          request(
            "PUT",
            "/v1/nodes/te-garbage",
            ["Host: relay", "Transfer-Encoding: chunked"],
            "ZZZ\r\nhello\r\n",
          ),
          [201, 400],
          true,
        ],
        [
          "chunk size beyond 64 bits",
          "te-huge",
          request(
            "PUT",
            "/v1/nodes/te-huge",
            ["Host: relay", "Transfer-Encoding: chunked"],
            "FFFFFFFFFFFFFFFFFFFF\r\n",
          ),
          [201, 400],
          true,
        ],
        [
          "valid chunked body",
          "te-ok",
          request(
            "PUT",
            "/v1/nodes/te-ok",
            ["Host: relay", "Transfer-Encoding: chunked"],
            "3\r\nabc\r\n0\r\n\r\n",
          ),
          [201],
          // Every framing case half-closes the socket after sending, and Deno's
          // HTTP server cancels a response still pending when it reads that
          // EOF: on a busy machine a dropped answer (never a 5xx) is possible.
          true,
        ],
        [
          "Transfer-Encoding gzip only",
          "te-gzip",
          request("PUT", "/v1/nodes/te-gzip", ["Host: relay", "Transfer-Encoding: gzip"]),
          [400, 501],
          true,
        ],
        [
          "Expect: 100-continue",
          "expect",
          request("PUT", "/v1/nodes/expect", [
            "Host: relay",
            "Expect: 100-continue",
            "Content-Length: 5",
          ]),
          [201, 417],
          true,
        ],
        [
          "header value with NUL",
          "hdr-nul",
          request("PUT", "/v1/nodes/hdr-nul", ["Host: relay", "X-Bad: a\0b"]),
          [400],
          true,
        ],
        [
          "header value with 0x01",
          "hdr-ctl",
          request("PUT", "/v1/nodes/hdr-ctl", ["Host: relay", "X-Bad: a\x01b"]),
          [400],
          true,
        ],
        [
          "non-ASCII header name",
          "hdr-name",
          request("PUT", "/v1/nodes/hdr-name", ["Host: relay", "X-Bé: a"]),
          [400],
          true,
        ],
        [
          "header without a colon",
          "hdr-colon",
          request("PUT", "/v1/nodes/hdr-colon", ["Host: relay", "Broken"]),
          [400],
          true,
        ],
        [
          "space in a header name",
          "hdr-space",
          request("PUT", "/v1/nodes/hdr-space", ["Host: relay", "Bad Name: x"]),
          [400],
          true,
        ],
        [
          "obsolete line folding",
          "hdr-fold",
          request("PUT", "/v1/nodes/hdr-fold", ["Host: relay", "X-Fold: a", " b"]),
          [400, 201],
          true,
        ],
      ];
      for (const [label, fingerprint, text, allowed, closeOk] of framing) {
        const result = await fx.raw(text, { closeWrite: true });
        group.raw(label, result, allowed, closeOk);
        const after = await fx.cleanup(group, label, fingerprint);
        if (/^(lying|chunked garbage|chunk size|Expect)/.test(label)) {
          fx.notes.push(
            `${label}: ${firstStatus(result) ?? "no response"} (${result.end}); ` +
              `${after === 204 ? "a lease was granted" : "no lease"}`,
          );
        }
      }
      // A body longer than its Content-Length: the rest is read as the next request.
      const smuggle = await fx.raw(
        request("PUT", "/v1/nodes/cl-short", ["Host: relay", "Content-Length: 1"], "abcdef"),
        {
          want: 2,
          closeWrite: true,
        },
      );
      // Half-closed too: a dropped answer is possible (see "valid chunked body").
      group.raw("body longer than Content-Length: first request", smuggle, [201], true);
      const second = smuggle.responses[1]?.status ?? null;
      group.check(
        "body longer than Content-Length: the rest is a bad request or dropped",
        second === null || second === 400,
        describe(smuggle),
      );
      await fx.cleanup(group, "body longer than Content-Length", "cl-short");
      // Send half a body, then drop the socket without reading anything.
      fx.exchange();
      const dropped = await Deno.connect({ hostname: HOSTNAME, port: fx.port });
      try {
        await writeAll(
          dropped,
          utf8.encode(
            request("PUT", "/v1/nodes/cl-drop", ["Host: relay", "Content-Length: 1000"], "x"),
          ),
        );
      } finally {
        dropped.close();
      }
      group.check("half a body, then close", true);
      await fx.checkHealth(group, "framing");
      await fx.cleanup(group, "half a body, then close", "cl-drop");
      group.finish();
    });

    await fx.closingSteps(t, { "headers and bodies": 50 });
  });
}
