import assert from "node:assert/strict";
import { importPublicKey } from "../../lib/keygen_certificate.ts";
import { verifyMachineFile } from "../../lib/machine_file.ts";
import { unixSeconds } from "../../lib/time.ts";
import { main, parseMintArgs } from "../../scripts/mint.ts";
import { tempDir } from "../helpers.ts";

const FINGERPRINT = "364646b45d9b732f1baaeee9382f4e7e541e65e8a9fd4aa72e4853477d85bf08";

Deno.test("deno task mint --machine writes a machine file, its key and the public key", async (t) => {
  for (
    const [extra, algorithm] of [
      [[], "aes-256-gcm+ed25519"],
      [["--rsa"], "aes-256-gcm+rsa-pss-sha256"],
      [["--algorithm", "aes-256-gcm+rsa-sha256"], "aes-256-gcm+rsa-sha256"],
    ] as const
  ) {
    await t.step(algorithm, async () => {
      await using dir = await tempDir();
      const printed: string[] = [];
      const code = await main(
        [
          "--out",
          dir.path,
          "--machine",
          FINGERPRINT,
          "--platform",
          "linux/amd64",
          "--hostname",
          "relay",
          "--ip",
          "192.168.1.1",
          "--ttl",
          "3600",
          ...extra,
        ],
        (text) => printed.push(text),
        () => {},
      );
      assert.equal(code, 0);
      assert.deepEqual(printed, [
        `Minted a machine file for ${FINGERPRINT} (${algorithm}, ttl 3600 s) into ${dir.path}`,
      ]);
      const certificate = await Deno.readTextFile(`${dir.path}/relay.lic`);
      const lines = certificate.split("\n");
      assert.equal(lines[0], "-----BEGIN MACHINE FILE-----");
      assert.equal(lines.at(-2), "-----END MACHINE FILE-----");
      assert.ok(lines.slice(1, -2).every((line) => line.length <= 60), "wrapped at 60 columns");
      const file = await verifyMachineFile(certificate, {
        publicKey: await importPublicKey(await Deno.readTextFile(`${dir.path}/public_key`)),
        licenseKey: await Deno.readTextFile(`${dir.path}/relay.key`),
        fingerprint: FINGERPRINT,
        now: unixSeconds(new Date()),
      });
      assert.equal(file.algorithm, algorithm);
      assert.deepEqual(
        [file.fingerprint, file.platform, file.hostname, file.ip, file.ttl],
        [FINGERPRINT, "linux/amd64", "relay", "192.168.1.1", 3600],
      );
    });
  }
  await t.step("--expired issues it one ttl and a day ago", async () => {
    await using dir = await tempDir();
    assert.equal(
      await main(["--out", dir.path, "--machine", FINGERPRINT, "--expired"], () => {}, () => {}),
      0,
    );
    const error = await verifyMachineFile(await Deno.readTextFile(`${dir.path}/relay.lic`), {
      publicKey: await importPublicKey(await Deno.readTextFile(`${dir.path}/public_key`)),
      licenseKey: await Deno.readTextFile(`${dir.path}/relay.key`),
      fingerprint: FINGERPRINT,
      now: unixSeconds(new Date()),
    }).then(() => undefined, (error) => error);
    assert.equal(error?.code, "license_file_expired");
  });
});

Deno.test("parseMintArgs() gives machine options only with --machine", () => {
  const quiet = { print: () => {}, printError: () => {} };
  const plain = parseMintArgs(["--out", "d"], quiet);
  assert.ok(plain.kind === "run" && !("machine" in plain.options));
  const machine = parseMintArgs(["--out", "d", "--machine", "fp", "--hostname", "h"], quiet);
  assert.ok(machine.kind === "run");
  assert.deepEqual(machine.options.machine, {
    fingerprint: "fp",
    platform: null,
    hostname: "h",
    ip: null,
  });
});
