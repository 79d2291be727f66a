import assert from "node:assert/strict";
import { tempDir } from "../helpers.ts";
import { runRelay } from "./support.ts";

Deno.test("relay add and relay del refuse empty --file, --key and --license lists", async () => {
  await using dir = await tempDir();
  const cases = [
    ["add", "--file", "", "--key", "", "--public-key", "0".repeat(64)],
    ["add", "--file", ",", "--key", ",", "--public-key", "0".repeat(64)],
    ["del", "--license", ""],
    ["del", "--license", ","],
  ];
  for (const args of cases) {
    const result = await runRelay(args, { cwd: dir.path });
    assert.equal(result.code, 2, args.join(" "));
    assert.match(result.stderr, /^error: --(file|license) needs at least one/, args.join(" "));
    assert.equal(result.stdout, "");
  }
});
