/**
 * The README's signature verification functions, for Deno and for Node.js,
 * run as printed on real signed responses of a running `relay serve`: they
 * accept each answer for the request it answers, and refuse it for another
 * node's request, another method or status, or with another body.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { addMinted, startServer, tempDir } from "../helpers.ts";
import { call, type Reply } from "./http_support.ts";

const README = fromFileUrl(new URL("../../README.md", import.meta.url));
const SECRET = "docs-s3cret";

/** The code block that follows `<!-- verify:<name> -->` in the README. */
async function snippet(name: string): Promise<string> {
  const text = await Deno.readTextFile(README);
  const marker = text.indexOf(`<!-- verify:${name} -->`);
  assert.ok(marker >= 0, `README has no <!-- verify:${name} --> block`);
  const match = /```(?:ts|js)\n([\s\S]*?)```/.exec(text.slice(marker));
  assert.ok(match, `no code block after <!-- verify:${name} -->`);
  return match[1];
}

/** One verification to run: the answer, and the request it is presented for. */
interface Case {
  header: string;
  body: string;
  request: { method: string; path: string; status: number };
  expected: boolean;
}

/** The answers of a running server, each for its own request and for other ones. */
function cases(replies: Reply[]): Case[] {
  return replies.flatMap((reply) => {
    const header = reply.headers.get("Relay-Signature");
    assert.ok(header);
    const request = { ...reply.request, status: reply.status };
    return [
      { header, body: reply.body, request, expected: true },
      {
        header,
        body: reply.body,
        request: { ...request, path: "/v1/nodes/other" },
        expected: false,
      },
      {
        header,
        body: reply.body,
        request: { ...request, method: request.method === "PUT" ? "DELETE" : "PUT" },
        expected: false,
      },
      {
        header,
        body: reply.body,
        request: { ...request, status: request.status + 1 },
        expected: false,
      },
      { header, body: reply.body + " ", request, expected: false },
      { header: header.replace(/,v2=.*/, ""), body: reply.body, request, expected: false },
    ];
  });
}

Deno.test("the README's signature checks, in Deno and in Node.js, verify real responses", async () => {
  await using dir = await tempDir();
  await addMinted(dir.path, 1);
  await using server = await startServer(["--signing-secret", SECRET], { cwd: dir.path });
  const replies = [
    await call(server.url, "PUT", "/v1/nodes/node-1"),
    await call(server.url, "PUT", "/v1/nodes/node-1"),
    await call(server.url, "PUT", "/v1/nodes/node-2"),
    await call(server.url, "DELETE", "/v1/nodes/node-1"),
    await call(server.url, "GET", "/v1/health"),
  ];
  assert.deepEqual(replies.map((reply) => reply.status), [201, 202, 410, 204, 200]);
  const all = cases(replies);

  const denoModule = `${dir.path}/verify.ts`;
  await Deno.writeTextFile(denoModule, `${await snippet("deno")}\nexport { verifyRelay };\n`);
  const { verifyRelay } = await import(`file://${denoModule}`);
  for (const { header, body, request, expected } of all) {
    assert.equal(
      await verifyRelay(header, body, request, SECRET),
      expected,
      JSON.stringify(request),
    );
  }

  const nodeScript = `${dir.path}/verify.cjs`;
  await Deno.writeTextFile(
    nodeScript,
    `${await snippet("node")}
const cases = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(cases.map((c) => verifyRelay(c.header, c.body, c.request, ${
      JSON.stringify(SECRET)
    }))));
`,
  );
  const node = new Deno.Command("node", { args: [nodeScript], stdin: "piped", stdout: "piped" })
    .spawn();
  const writer = node.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(all)));
  await writer.close();
  const { code, stdout } = await node.output();
  assert.equal(code, 0);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(stdout)), all.map((c) => c.expected));
});
