import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createCipheriv, createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import {
  LicenseFileExpiredError,
  LicenseFileIssuedInFutureError,
  LicenseFileNotGenuineError,
  MalformedLicenseFileError,
  type RelayError,
  UnsupportedAlgorithmError,
  WrongLicenseKeyError,
} from "../../lib/errors.ts";
import { importPublicKey } from "../../lib/keygen_certificate.ts";
import { verifyMachineFile } from "../../lib/machine_file.ts";
import { unixSeconds } from "../../lib/time.ts";
import {
  generateKeyPair,
  mintLicenseFile,
  mintMachineFile,
  sealCertificate,
} from "../../scripts/mint.ts";

const FINGERPRINT = "364646b45d9b732f1baaeee9382f4e7e541e65e8a9fd4aa72e4853477d85bf08";
const ISSUED = new Date("2026-03-01T00:00:00.000Z");
const NOW = unixSeconds(new Date("2026-03-02T00:00:00.000Z"));
const ed25519 = await generateKeyPair("ed25519");
const rsa = await generateKeyPair("rsa");
const ed25519Key = await importPublicKey(ed25519.publicKeyText);
const rsaKey = await importPublicKey(rsa.publicKeyText);

async function rejectsWith(
  promise: Promise<unknown>,
  type: new (...args: never[]) => RelayError,
  what: string,
): Promise<RelayError> {
  const error = await promise.then(() => undefined, (error) => error);
  assert.ok(error instanceof type, `${what}: ${error}`);
  return error as RelayError;
}

Deno.test("verifyMachineFile() reads a machine file built independently in Keygen's exact format", async () => {
  // Built with node:crypto, not scripts/mint.ts: as Keygen's check-out action
  // does (machine dataset, AES-256-GCM under SHA-256(key + fingerprint),
  // Ed25519 over "machine/" + enc, base64 wrapped at 60 columns).
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  const licenseKey = "73F7DA-19BCBF-30B806-2F4C7D-3C2ACE-V3";
  const dataset = JSON.stringify({
    data: {
      id: "8d4e4fe6-0f4a-4b8c-9d77-5b4a3e0c6a11",
      type: "machines",
      attributes: {
        fingerprint: FINGERPRINT,
        ip: "192.168.1.1",
        hostname: "relay",
        platform: "linux/amd64",
        name: null,
        metadata: {},
      },
      relationships: { license: { data: { type: "licenses", id: crypto.randomUUID() } } },
    },
    meta: { issued: "2026-03-01T00:00:00.000Z", expiry: "2026-03-31T00:00:00.000Z", ttl: 2592000 },
  });
  const secret = createHash("sha256").update(licenseKey + FINGERPRINT).digest();
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", secret, iv);
  const ciphertext = Buffer.concat([cipher.update(dataset), cipher.final()]);
  const enc = [ciphertext, iv, cipher.getAuthTag()].map((b) => b.toString("base64")).join(".");
  const sig = sign(null, Buffer.from(`machine/${enc}`), privateKey).toString("base64");
  const body = Buffer.from(JSON.stringify({ enc, sig, alg: "aes-256-gcm+ed25519" }))
    .toString("base64").match(/.{1,60}/g)!.join("\n");
  const certificate = `-----BEGIN MACHINE FILE-----\n${body}\n-----END MACHINE FILE-----\n`;

  const file = await verifyMachineFile(certificate, {
    publicKey: await importPublicKey(Buffer.from(raw).toString("hex")),
    licenseKey,
    fingerprint: FINGERPRINT,
    now: NOW,
  });
  assert.deepEqual(file, {
    id: "8d4e4fe6-0f4a-4b8c-9d77-5b4a3e0c6a11",
    algorithm: "aes-256-gcm+ed25519",
    fingerprint: FINGERPRINT,
    platform: "linux/amd64",
    hostname: "relay",
    ip: "192.168.1.1",
    issued: new Date("2026-03-01T00:00:00.000Z"),
    fileExpiry: new Date("2026-03-31T00:00:00.000Z"),
    ttl: 2592000,
  });
});

Deno.test("verifyMachineFile() accepts minted Ed25519 and RSA machine files", async (t) => {
  for (
    const [keyPair, publicKey, algorithm] of [
      [ed25519, ed25519Key, "aes-256-gcm+ed25519"],
      [rsa, rsaKey, "aes-256-gcm+rsa-pss-sha256"],
      [rsa, rsaKey, "aes-256-gcm+rsa-sha256"],
    ] as const
  ) {
    await t.step(algorithm, async () => {
      const minted = await mintMachineFile(keyPair, {
        fingerprint: FINGERPRINT,
        algorithm,
        issued: ISSUED,
        platform: "linux/arm64",
      });
      const file = await verifyMachineFile(minted.certificate, {
        publicKey,
        licenseKey: minted.licenseKey,
        fingerprint: FINGERPRINT,
        now: NOW,
      });
      assert.equal(file.id, minted.id);
      assert.equal(file.algorithm, algorithm);
      assert.equal(file.platform, "linux/arm64");
      assert.equal(file.hostname, "", "a null hostname reads as empty");
      assert.equal(file.fileExpiry?.toISOString(), "2026-03-31T00:00:00.000Z");
    });
  }
});

Deno.test("verifyMachineFile() refuses what keygen-go refuses", async (t) => {
  const minted = await mintMachineFile(ed25519, { fingerprint: FINGERPRINT, issued: ISSUED });
  const options = {
    publicKey: ed25519Key,
    licenseKey: minted.licenseKey,
    fingerprint: FINGERPRINT,
    now: NOW,
  };
  await t.step("another account's key: not genuine", async () => {
    const other = await importPublicKey((await generateKeyPair("ed25519")).publicKeyText);
    await rejectsWith(
      verifyMachineFile(minted.certificate, { ...options, publicKey: other }),
      LicenseFileNotGenuineError,
      "other key",
    );
    await rejectsWith(
      verifyMachineFile(minted.certificate, { ...options, publicKey: rsaKey }),
      LicenseFileNotGenuineError,
      "RSA key for an Ed25519 file",
    );
  });
  await t.step("a license file's signature (license/ prefix) is not a machine file's", async () => {
    const dataset = JSON.stringify({ data: { id: "x", type: "machines" } });
    const asLicense = await sealCertificate(ed25519, "aes-256-gcm+ed25519", "k", dataset);
    await rejectsWith(
      verifyMachineFile(asLicense, options),
      MalformedLicenseFileError,
      "LICENSE FILE framing",
    );
    const framedAsMachine = asLicense.replaceAll("LICENSE FILE", "MACHINE FILE");
    await rejectsWith(
      verifyMachineFile(framedAsMachine, options),
      LicenseFileNotGenuineError,
      "signed over license/",
    );
  });
  await t.step("the wrong license key or fingerprint does not decrypt it", async () => {
    await rejectsWith(
      verifyMachineFile(minted.certificate, { ...options, licenseKey: "WRONG" }),
      WrongLicenseKeyError,
      "key",
    );
    await rejectsWith(
      verifyMachineFile(minted.certificate, { ...options, fingerprint: "f".repeat(64) }),
      WrongLicenseKeyError,
      "fingerprint",
    );
  });
  await t.step("expired, and issued more than 5 minutes ahead", async () => {
    const day = 86_400;
    await rejectsWith(
      verifyMachineFile(minted.certificate, { ...options, now: NOW + 30 * day }),
      LicenseFileExpiredError,
      "expired",
    );
    await rejectsWith(
      verifyMachineFile(minted.certificate, { ...options, now: unixSeconds(ISSUED) - 301 }),
      LicenseFileIssuedInFutureError,
      "future",
    );
    // Within the drift, and without a ttl, it passes.
    await verifyMachineFile(minted.certificate, { ...options, now: unixSeconds(ISSUED) - 299 });
    const forever = await mintMachineFile(ed25519, {
      fingerprint: FINGERPRINT,
      issued: ISSUED,
      ttl: null,
      licenseKey: minted.licenseKey,
    });
    await verifyMachineFile(forever.certificate, { ...options, now: NOW + 3650 * day });
  });
  await t.step("an unencrypted (base64+*) machine file", async () => {
    const plain = await mintMachineFile(ed25519, {
      fingerprint: FINGERPRINT,
      algorithm: "base64+ed25519",
      issued: ISSUED,
    });
    const error = await rejectsWith(
      verifyMachineFile(plain.certificate, options),
      UnsupportedAlgorithmError,
      "base64",
    );
    assert.match(error.message, /not encrypted/);
  });
  await t.step("a dataset that is not a machine", async () => {
    const license = await mintLicenseFile(ed25519, { issued: ISSUED });
    const dataset = await sealCertificate(
      ed25519,
      "aes-256-gcm+ed25519",
      minted.licenseKey + FINGERPRINT,
      JSON.stringify({ data: { id: license.id, type: "licenses" }, meta: {} }),
      "machine",
    );
    await rejectsWith(verifyMachineFile(dataset, options), MalformedLicenseFileError, "type");
    const noFingerprint = await sealCertificate(
      ed25519,
      "aes-256-gcm+ed25519",
      minted.licenseKey + FINGERPRINT,
      JSON.stringify({
        data: { id: "m", type: "machines", attributes: {} },
        meta: { issued: ISSUED.toISOString() },
      }),
      "machine",
    );
    await rejectsWith(
      verifyMachineFile(noFingerprint, options),
      MalformedLicenseFileError,
      "no fingerprint",
    );
  });
});
