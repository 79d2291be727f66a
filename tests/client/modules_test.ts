/**
 * The client SDK's shape: it imports nothing outside `lib/client/` (so it
 * bundles alone, for Node.js too) and no npm or remote module.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = new URL("../../", import.meta.url);

Deno.test("lib/client/ imports only lib/client/ modules and no package", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "lib/client/mod.ts"],
    cwd: fileURLToPath(ROOT),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const { modules } = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: { specifier: string }[];
  };
  const names = modules.map((module) => module.specifier.replace(ROOT.href, ""));
  assert.ok(names.length >= 9, names.join(", "));
  assert.deepEqual(names.filter((name) => !/^lib\/client\/[a-z_]+\.ts$/.test(name)), []);
  for (const name of names) {
    const source = (await Deno.readTextFile(new URL(name, ROOT)))
      .split("\n").filter((line) => !/^\s*(\*|\/\/|\/\*\*)/.test(line)).join("\n");
    // Runtime APIs are found through globalThis (lib/client/signals.ts), never named.
    assert.doesNotMatch(source, /(?<![.\w])Deno\.[a-z]/, name);
  }
});
