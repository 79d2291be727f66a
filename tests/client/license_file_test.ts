/**
 * The client's own license-file verification and encodings, against real
 * Keygen files, minted ones, and the platform's own base64 and hex.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fromBase64, fromHex, toBase64, toHex } from "../../lib/client/encoding.ts";
import { importPublicKey, verifyLicenseFile } from "../../lib/client/mod.ts";
import { mintLicenseFile } from "../../scripts/mint.ts";
import { KEYGEN, sharedKeyPair } from "../helpers.ts";

const validAt = KEYGEN.validAt.getTime() / 1000;

Deno.test("verifyLicenseFile() reads a real Keygen file: id, key, expiry, entitlements", async () => {
  const publicKey = await importPublicKey(KEYGEN.publicKey);
  for (const { id, key, path } of KEYGEN.licenses) {
    const text = await Deno.readTextFile(path);
    const info = await verifyLicenseFile(text, { publicKey, licenseKey: key, now: validAt });
    assert.equal(info.id, id);
    assert.equal(info.key, key);
    assert.equal(info.algorithm, "aes-256-gcm+ed25519");
    assert.equal(info.fileExpiry?.toISOString().slice(0, 10), "2026-01-04");
    assert.deepEqual(info.dataset.data && (info.dataset.data as { id: string }).id, id);
    // The base64 of the file, as Relay's answers carry it, reads the same.
    const encoded = new TextEncoder().encode(text).toBase64();
    assert.equal(
      (await verifyLicenseFile(encoded, { publicKey, licenseKey: key, now: validAt })).id,
      id,
    );
  }
});

Deno.test("verifyLicenseFile() refuses a wrong key, another vendor's key, an expired or altered file", async () => {
  const publicKey = await importPublicKey(KEYGEN.publicKey);
  const [{ key, path }] = KEYGEN.licenses;
  const text = await Deno.readTextFile(path);
  const refused = { name: "RelayClientError", code: "invalid_license_file" };
  await assert.rejects(
    verifyLicenseFile(text, { publicKey, licenseKey: "WRONG", now: validAt }),
    { ...refused, message: /does not decrypt/ },
  );
  const other = await importPublicKey((await sharedKeyPair()).publicKeyText);
  await assert.rejects(
    verifyLicenseFile(text, { publicKey: other, licenseKey: key, now: validAt }),
    { ...refused, message: /signature/ },
  );
  await assert.rejects(
    verifyLicenseFile(text, { publicKey, licenseKey: key, now: Date.UTC(2026, 0, 5) / 1000 }),
    { ...refused, message: /expired at 2026-01-04/ },
  );
  await assert.rejects(
    verifyLicenseFile(text.replace("LICENSE FILE-----\n", "LICENSE FILE-----\nAA"), {
      publicKey,
      licenseKey: key,
      now: validAt,
    }),
    refused,
  );
  await assert.rejects(importPublicKey("abc"), { code: "invalid_public_key" });
});

Deno.test("verifyLicenseFile() checks the key of an unencrypted base64+ file, and RSA PKCS#1 keys", async () => {
  const pair = await sharedKeyPair("rsa");
  const minted = await mintLicenseFile(pair, {
    algorithm: "base64+rsa-sha256",
    entitlements: ["A"],
  });
  const publicKey = await importPublicKey(pair.publicKeyText);
  const now = Math.floor(Date.now() / 1000);
  const info = await verifyLicenseFile(minted.certificate, {
    publicKey,
    licenseKey: minted.key,
    now,
  });
  assert.deepEqual(info.entitlements, ["A"]);
  await assert.rejects(
    verifyLicenseFile(minted.certificate, { publicKey, licenseKey: "OTHER", now }),
    { code: "invalid_license_file", message: /does not match/ },
  );
  // The same key as PKCS#1 ("RSA PUBLIC KEY"): the SPKI of an RSA-2048 key without its 24-byte header.
  const spki = Uint8Array.fromBase64(pair.publicKeyText.replace(/-----[A-Z ]+-----|\s/g, ""));
  const pkcs1 = `-----BEGIN RSA PUBLIC KEY-----\n${
    spki.slice(24).toBase64()
  }\n-----END RSA PUBLIC KEY-----`;
  const fromPkcs1 = await importPublicKey(pkcs1);
  assert.equal(
    (await verifyLicenseFile(minted.certificate, {
      publicKey: fromPkcs1,
      licenseKey: minted.key,
      now,
    })).id,
    minted.id,
  );
  const ed25519 = await importPublicKey((await sharedKeyPair()).publicKeyText);
  await assert.rejects(
    verifyLicenseFile(minted.certificate, { publicKey: ed25519, licenseKey: minted.key, now }),
    { code: "invalid_license_file", message: /does not match the ed25519 public key/ },
  );
});

Deno.test("the client's hex and base64 agree with the platform's and refuse what it refuses", () => {
  for (let length = 0; length < 40; length++) {
    const bytes = crypto.getRandomValues(new Uint8Array(length));
    assert.equal(toBase64(bytes), bytes.toBase64());
    assert.deepEqual(fromBase64(bytes.toBase64()), bytes);
    assert.deepEqual(fromBase64(bytes.toBase64({ omitPadding: true })), bytes);
    assert.equal(toHex(bytes), bytes.toHex());
    assert.deepEqual(fromHex(bytes.toHex().toUpperCase()), bytes);
  }
  for (const bad of ["A", "AB=C", "AB$=", "ABC==", "A==="]) {
    assert.throws(() => fromBase64(bad), SyntaxError, bad);
  }
  for (const bad of ["a", "zz", "0g"]) assert.throws(() => fromHex(bad), SyntaxError, bad);
});
