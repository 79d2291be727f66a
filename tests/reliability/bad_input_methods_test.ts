/**
 * Bad input, methods and Host headers: every method on each route (405 with
 * `Allow`), the ones fetch refuses sent over a raw socket, and malformed Host
 * headers, which must neither crash the handler nor re-route the request.
 *
 * @module
 */

import { BACKENDS } from "./backends.ts";
import { badInputServer, ERR } from "./bad_input_fixture.ts";
import { bytes, firstStatus, HOSTNAME, request } from "./raw_http.ts";

for (const backend of BACKENDS) {
  Deno.test(`odd methods and Host headers never get a 5xx, a crash or a hang, and the server stays healthy (${backend})`, async (t) => {
    await using fx = await badInputServer(backend);

    await t.step("methods", async () => {
      const group = fx.group("methods");
      const nodeMethods = [
        "PATCH",
        "POST",
        "OPTIONS",
        "FOO",
        "M-SEARCH",
        "PROPFIND",
        "patch",
        "foo",
      ];
      for (const method of nodeMethods) {
        const reply = await fx.send(method, "/v1/nodes/method-node");
        group.status(`${method} /v1/nodes/x`, reply.status, [405]);
        group.eq(
          `${method} /v1/nodes/x: body and Allow`,
          [reply.body, reply.headers.get("Allow")],
          [
            ERR.methodNotAllowed,
            "GET, PUT, DELETE",
          ],
        );
      }
      // GET looks a lease up (ours; the reference answers 405): this node has none.
      const get = await fx.send("GET", "/v1/nodes/method-node");
      group.status("GET /v1/nodes/x", get.status, [404]);
      group.eq("GET /v1/nodes/x: body", get.body, ERR.claimNotFound);
      const head = await fx.send("HEAD", "/v1/nodes/method-node");
      group.status("HEAD /v1/nodes/x", head.status, [405]);
      group.eq("HEAD /v1/nodes/x: no body, Allow", [head.body, head.headers.get("Allow")], [
        "",
        "GET, PUT, DELETE",
      ]);
      for (const method of ["PUT", "DELETE", "POST", "PATCH", "OPTIONS", "FOO"]) {
        const reply = await fx.send(method, "/v1/health");
        group.status(`${method} /v1/health`, reply.status, [405]);
        group.eq(`${method} /v1/health: Allow`, reply.headers.get("Allow"), "GET, HEAD");
      }
      const healthHead = await fx.send("HEAD", "/v1/health");
      group.status("HEAD /v1/health", healthHead.status, [200]);
      for (const method of ["TRACE", "CONNECT", "TRACK"]) {
        let refused = false;
        try {
          await fx.send(method, "/v1/nodes/method-node");
        } catch (error) {
          refused = error instanceof TypeError;
        }
        group.check(`fetch refuses ${method} itself`, refused, "fetch sent it");
      }

      // Raw sockets: what fetch refuses or rewrites.
      const rawMethods: [string, string | Uint8Array, number[], string | null][] = [
        ["TRACE /v1/nodes/x", request("TRACE", "/v1/nodes/method-node"), [405], "GET, PUT, DELETE"],
        ["TRACK /v1/nodes/x", request("TRACK", "/v1/nodes/method-node"), [405], "GET, PUT, DELETE"],
        ["TRACE /v1/health", request("TRACE", "/v1/health"), [405], "GET, HEAD"],
        [
          "CONNECT authority-form",
          request("CONNECT", `${HOSTNAME}:${fx.port}`, [`Host: ${HOSTNAME}:${fx.port}`]),
          [400, 404, 405],
          null,
        ],
        ["CONNECT with a path", request("CONNECT", "/v1/nodes/method-node"), [400, 405], null],
        // fetch upper-cases "put"; the server itself does not (nor does Go's net/http).
        [
          "lower-case put",
          request("put", "/v1/nodes/method-lower", ["Host: relay", "Content-Length: 0"]),
          [400, 405],
          "GET, PUT, DELETE",
        ],
        [
          "lower-case delete",
          request("delete", "/v1/nodes/method-lower"),
          [400, 405],
          "GET, PUT, DELETE",
        ],
        ["lower-case get /v1/health", request("get", "/v1/health"), [400, 405], "GET, HEAD"],
        ["unknown token FOO", request("FOO", "/v1/nodes/method-node"), [405], "GET, PUT, DELETE"],
        ["5000-character method", request("X".repeat(5000), "/v1/nodes/method-node"), [
          400,
          405,
          414,
          431,
        ], null],
        ["method with @", request("G@T", "/v1/health"), [400], null],
        [
          "method with a control byte",
          bytes("GE", [1], "T /v1/health HTTP/1.1\r\nHost: relay\r\n\r\n"),
          [400],
          null,
        ],
        ["empty method", request("", "/v1/health"), [400], null],
      ];
      for (const [label, data, allowed, allow] of rawMethods) {
        const result = await fx.raw(data);
        if (
          group.raw(label, result, allowed, true) && allow !== null &&
          firstStatus(result) === 405
        ) {
          group.check(
            `${label}: Allow`,
            result.responses[0].head.toLowerCase().includes(`allow: ${allow.toLowerCase()}`),
            result.responses[0].head,
          );
        }
      }
      await fx.checkHealth(group, "methods");
      group.finish();
    });

    await t.step("malformed Host headers: 400, never 500, never re-routed", async () => {
      const group = fx.group("host header");
      // The request-target names the route; a Host value must not change it or crash the handler.
      const hosts = [
        "a b",
        "%",
        "[::1",
        "relay:99999",
        "relay:abc",
        "a|b",
        "<relay>",
        "a^b",
        "a/b",
        "a?b",
        "a#b",
        "a\\b",
      ];
      for (const host of hosts) {
        const result = await fx.raw(request("GET", "/v1/health", [`Host: ${host}`]));
        group.raw(`GET /v1/health with Host: ${host}`, result, [200, 400]);
      }
      const injected = await fx.raw(request("GET", "/nope", ["Host: relay/v1/health#"]));
      group.raw("GET /nope with Host: relay/v1/health# (re-routing)", injected, [400, 404]);
      const claimed = await fx.raw(
        request("PUT", "/nope", ["Host: relay/v1/nodes/host-injected?", "Content-Length: 0"]),
      );
      group.raw("PUT /nope with Host: relay/v1/nodes/host-injected? (re-routing)", claimed, [
        400,
        404,
      ]);
      await fx.cleanup(group, "Host re-routing", "host-injected");
      await fx.checkHealth(group, "malformed Host headers");
      group.finish();
    });

    await fx.closingSteps(t, { methods: 50, "host header": 15 });
  });
}
