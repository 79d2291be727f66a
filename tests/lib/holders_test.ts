/**
 * `lib/holders.ts`: emails as user seats accept them, and holder keys that keep
 * users and nodes apart.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  holderJson,
  holderLabel,
  holderOfKey,
  MAX_EMAIL_LENGTH,
  nodeHolder,
  normalizeEmail,
  userHolder,
} from "../../lib/holders.ts";

Deno.test("normalizeEmail() lowercases a local@domain and refuses anything else", async (t) => {
  for (
    const [input, expected] of [
      ["Alice@Example.COM", "alice@example.com"],
      ["a.b+tag@sub.example.org", "a.b+tag@sub.example.org"],
      ["ops@localhost", "ops@localhost"],
      ["ÜNÏ@Bücher.example", "ünï@bücher.example"],
      [" alice@example.com", undefined],
      ["alice@example.com\n", undefined],
      ["alice", undefined],
      ["alice@", undefined],
      ["@example.com", undefined],
      ["a@b@c.d", undefined],
      ["al ice@example.com", undefined],
      ["alice@example..com", undefined],
      ["alice@example.com-", undefined],
      [`${"a".repeat(65)}@example.com`, undefined],
      [`a@${"b".repeat(MAX_EMAIL_LENGTH)}`, undefined],
    ] as const
  ) {
    await t.step(JSON.stringify(input), () => assert.equal(normalizeEmail(input), expected));
  }
});

Deno.test("holder keys: a user's never equals a node's, and is shown as a user", () => {
  const user = userHolder("alice@example.com");
  assert.notEqual(user.key, nodeHolder("alice@example.com").key);
  assert.deepEqual(holderOfKey(user.key), user);
  assert.deepEqual(holderOfKey("alice@example.com"), nodeHolder("alice@example.com"));
  assert.equal(holderLabel(user.key), "user alice@example.com");
  assert.equal(holderLabel("render-3"), "render-3");
  assert.deepEqual(holderJson(user.key), { node: null, user: "alice@example.com" });
  assert.deepEqual(holderJson("render-3", "node_fingerprint"), { node_fingerprint: "render-3" });
  assert.deepEqual(holderJson(null), { node: null });
});
