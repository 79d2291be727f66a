import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { NODE_LOCK } from "../../cli/node_lock_build.ts";
import { isLocked, UNLOCKED } from "../../lib/node_lock.ts";
import { compilePlan, TARGETS } from "../../scripts/compile.ts";
import {
  BUILD_VARIABLES,
  describeLock,
  LOCK_MODULE_PATH,
  nodeLockFromEnv,
  renderLockModule,
} from "../../scripts/lock.ts";
import { generateKeyPair } from "../../scripts/mint.ts";
import { runDeno, tempDir } from "../helpers.ts";

const FINGERPRINT = "364646b45d9b732f1baaeee9382f4e7e541e65e8a9fd4aa72e4853477d85bf08";
const ROOT = new URL("../../", import.meta.url);
const ed25519 = await generateKeyPair("ed25519");

Deno.test("the checked-out cli/node_lock_build.ts is the unlocked module (never commit a lock)", async () => {
  assert.deepEqual(NODE_LOCK, UNLOCKED);
  assert.equal(isLocked(NODE_LOCK), false);
  // Byte for byte what `deno task unlock` writes, so the generator and the file agree.
  assert.equal(await Deno.readTextFile(LOCK_MODULE_PATH), renderLockModule(UNLOCKED));
});

Deno.test("nodeLockFromEnv() reads the BUILD_NODE_LOCKED_* variables as the reference's Makefile", async (t) => {
  await t.step("none set: unlocked", async () => {
    assert.deepEqual(await nodeLockFromEnv({}), UNLOCKED);
    assert.deepEqual(await nodeLockFromEnv({ BUILD_NODE_LOCKED_PLATFORM: "" }), UNLOCKED);
  });
  await t.step("every variable", async () => {
    const lock = await nodeLockFromEnv({
      BUILD_NODE_LOCKED_PUBLIC_KEY: ` ${ed25519.publicKeyText} `,
      BUILD_NODE_LOCKED_FINGERPRINT: FINGERPRINT,
      BUILD_NODE_LOCKED_PLATFORM: "linux/amd64",
      BUILD_NODE_LOCKED_HOSTNAME: "relay",
      BUILD_NODE_LOCKED_IP: "192.168.1.1",
      BUILD_NODE_LOCKED_ADDR: "0.0.0.0",
      BUILD_NODE_LOCKED_PORT: "6349",
      BUILD_NODE_LOCKED_SIGNING_SECRET: " hunter2 ",
    });
    assert.deepEqual(lock, {
      publicKey: ed25519.publicKeyText,
      fingerprint: FINGERPRINT,
      platform: "linux/amd64",
      hostname: "relay",
      ip: "192.168.1.1",
      addr: "0.0.0.0",
      port: "6349",
      signingSecret: " hunter2 ",
    });
    assert.deepEqual(Object.keys(BUILD_VARIABLES), Object.keys(UNLOCKED));
  });
  await t.step("one required variable without the other, or bad values, are errors", async () => {
    const refuse = async (env: Record<string, string>, pattern: RegExp) =>
      assert.match(
        await nodeLockFromEnv(env).then(() => "", (error) => error.message),
        pattern,
      );
    await refuse({ BUILD_NODE_LOCKED_FINGERPRINT: FINGERPRINT }, /BUILD_NODE_LOCKED_PUBLIC_KEY/);
    await refuse(
      { BUILD_NODE_LOCKED_PUBLIC_KEY: ed25519.publicKeyText },
      /BUILD_NODE_LOCKED_FINGERPRINT is not set/,
    );
    await refuse({ BUILD_NODE_LOCKED_PORT: "6349" }, /needs both/);
    await refuse(
      { BUILD_NODE_LOCKED_PUBLIC_KEY: "abc", BUILD_NODE_LOCKED_FINGERPRINT: FINGERPRINT },
      /^BUILD_NODE_LOCKED_PUBLIC_KEY: /,
    );
    await refuse(
      {
        BUILD_NODE_LOCKED_PUBLIC_KEY: ed25519.publicKeyText,
        BUILD_NODE_LOCKED_FINGERPRINT: FINGERPRINT,
        BUILD_NODE_LOCKED_PORT: "http",
      },
      /^BUILD_NODE_LOCKED_PORT: /,
    );
  });
});

Deno.test("deno task lock --out writes a locked module elsewhere; the checkout is untouched", async () => {
  await using dir = await tempDir();
  const before = await Deno.readTextFile(LOCK_MODULE_PATH);
  const out = `${dir.path}/node_lock_build.ts`;
  const env = {
    BUILD_NODE_LOCKED_PUBLIC_KEY: ed25519.publicKeyText,
    BUILD_NODE_LOCKED_FINGERPRINT: FINGERPRINT,
    BUILD_NODE_LOCKED_SIGNING_SECRET: "hunter2",
  };
  const result = await runDeno(["task", "--quiet", "lock", "--out", out], {
    cwd: fileURLToPath(ROOT),
    env,
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(
    result.stdout,
    `wrote ${out}: node-locked to fingerprint, signingSecret (fingerprint 3646..bf08)\n`,
  );
  assert.ok(!result.stdout.includes("hunter2"), "the secret is not printed");
  const { NODE_LOCK: written } = await import(`file://${out}`);
  assert.deepEqual(written, { ...UNLOCKED, ...await nodeLockFromEnv(env) });
  assert.equal(await Deno.readTextFile(LOCK_MODULE_PATH), before);

  const unlocked = await runDeno(["task", "--quiet", "unlock", "--out", out], {
    cwd: fileURLToPath(ROOT),
  });
  assert.equal(unlocked.code, 0, unlocked.stderr);
  assert.equal(await Deno.readTextFile(out), renderLockModule(UNLOCKED));

  const missing = await runDeno(["task", "--quiet", "lock", "--out", out], {
    cwd: fileURLToPath(ROOT),
    env: { BUILD_NODE_LOCKED_FINGERPRINT: FINGERPRINT },
  });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error: A node-locked build needs both/);
});

Deno.test("compilePlan() writes the lock module, compiles, then restores it, and shows no secret", async () => {
  const lock = await nodeLockFromEnv({
    BUILD_NODE_LOCKED_PUBLIC_KEY: ed25519.publicKeyText,
    BUILD_NODE_LOCKED_FINGERPRINT: FINGERPRINT,
    BUILD_NODE_LOCKED_HOSTNAME: "relay",
    BUILD_NODE_LOCKED_SIGNING_SECRET: "hunter2",
  });
  const plan = compilePlan(lock, ["x86_64-unknown-linux-gnu"]);
  assert.equal(plan.length, 3);
  assert.equal(
    plan[0],
    "write cli/node_lock_build.ts: node-locked to fingerprint, hostname, signingSecret (fingerprint 3646..bf08)",
  );
  assert.match(plan[1], /^deno compile .*--target x86_64-unknown-linux-gnu/);
  assert.equal(plan[2], "restore cli/node_lock_build.ts");
  assert.ok(!plan.join("\n").includes("hunter2"));
  assert.equal(describeLock(UNLOCKED), "unlocked");
  assert.equal(compilePlan(UNLOCKED, Object.keys(TARGETS)).length, 7);
});
