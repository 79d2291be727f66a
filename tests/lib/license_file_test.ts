import assert from "node:assert/strict";
import {
  importPublicKey,
  LICENSE_FILE_ALGORITHMS,
  type LicenseFileAlgorithm,
  parseCertificate,
  type PublicKey,
  verifyLicenseFile,
} from "../../lib/license_file.ts";
import {
  InvalidPublicKeyError,
  LicenseFileExpiredError,
  LicenseFileIssuedInFutureError,
  LicenseFileNotGenuineError,
  MalformedLicenseFileError,
  type RelayError,
  UnsupportedAlgorithmError,
  WrongLicenseKeyError,
} from "../../lib/errors.ts";
import {
  frameCertificate,
  generateKeyPair,
  type KeyPair,
  mintLicenseFile,
  type MintOptions,
  sealCertificate,
  signEnc,
} from "../../scripts/mint.ts";
import { unixSeconds } from "../../lib/time.ts";
import { KEYGEN_FIXTURES } from "../helpers.ts";

const KEYGEN_PUBLIC_KEY = "e8601e48b69383ba520245fd07971e983d06d22c4257cfd82304601479cee788";
const REAL_FILES = [
  {
    id: "dcea31a4-1664-4633-9f52-4a1b0b5ea2ef",
    key: "9E32DD-D8CC22-771926-C2D834-C506DC-V3",
    issued: "2025-12-05T16:49:12.964Z",
    fileExpiry: "2026-01-04T16:49:12.964Z",
  },
  {
    id: "592d08c2-4045-462c-a981-dcd2bb78ce06",
    key: "9A96B8-FD08CD-8C433B-7657C8-8A8655-V3",
    issued: "2025-12-05T16:50:09.757Z",
    fileExpiry: "2026-01-04T16:50:09.757Z",
  },
];
/** Inside the real files' validity window. */
const REAL_NOW = new Date("2025-12-20T12:00:00Z");

/** Minted files are issued at ISSUED and checked at NOW, one day later. */
const ISSUED = new Date("2026-01-01T00:00:00.000Z");
const NOW = new Date("2026-01-02T00:00:00.000Z");
const MINUTE = 60_000;

// Key pairs are generated once per file: RSA generation is slow.
const ed25519 = await generateKeyPair("ed25519");
const rsa = await generateKeyPair("rsa");
const otherEd25519 = await generateKeyPair("ed25519");
const otherRsa = await generateKeyPair("rsa");
const keygenKey = await importPublicKey(KEYGEN_PUBLIC_KEY);
const ed25519Key = await importPublicKey(ed25519.publicKeyText);
const rsaKey = await importPublicKey(rsa.publicKeyText);

function keysFor(algorithm: LicenseFileAlgorithm): { pair: KeyPair; publicKey: PublicKey } {
  return algorithm.endsWith("+ed25519")
    ? { pair: ed25519, publicKey: ed25519Key }
    : { pair: rsa, publicKey: rsaKey };
}

/** Mints with `algorithm`'s key pair, issued at ISSUED unless `options` say otherwise. */
async function mint(
  algorithm: LicenseFileAlgorithm = "aes-256-gcm+ed25519",
  options?: MintOptions,
) {
  return await mintLicenseFile(keysFor(algorithm).pair, { issued: ISSUED, algorithm, ...options });
}

/** Verifies with `algorithm`'s public key at NOW unless told otherwise. */
function verify(
  certificate: string | Uint8Array,
  licenseKey: string,
  options: { algorithm?: LicenseFileAlgorithm; publicKey?: PublicKey; now?: Date } = {},
) {
  return verifyLicenseFile(certificate, {
    publicKey: options.publicKey ?? keysFor(options.algorithm ?? "aes-256-gcm+ed25519").publicKey,
    licenseKey,
    now: unixSeconds(options.now ?? NOW),
  });
}

/** Asserts that `promise` rejects with an instance of `errorClass` whose code is `code`. */
async function assertRefused(
  promise: Promise<unknown>,
  errorClass: new (message: string) => RelayError,
  code: string,
): Promise<RelayError> {
  let caught: unknown;
  await assert.rejects(promise, (error) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof errorClass, `expected ${errorClass.name}, got ${caught}`);
  assert.equal(caught.code, code);
  return caught;
}

/** Re-frames a minted certificate after changing its `{enc, sig, alg}` fields. */
function reframe(
  certificate: string,
  change: (fields: Record<string, unknown>) => Record<string, unknown>,
): string {
  return frameCertificate(JSON.stringify(change({ ...parseCertificate(certificate) })));
}

function readFixture(id: string): Promise<Uint8Array> {
  return Deno.readFile(`${KEYGEN_FIXTURES}${id}.lic`);
}

// Real Keygen files

Deno.test("verifyLicenseFile() accepts both real Keygen files inside their validity window", async () => {
  for (const real of REAL_FILES) {
    const file = await verifyLicenseFile(await readFixture(real.id), {
      publicKey: keygenKey,
      licenseKey: real.key,
      now: unixSeconds(REAL_NOW),
    });
    assert.deepEqual(file, {
      id: real.id,
      key: real.key,
      algorithm: "aes-256-gcm+ed25519",
      expiry: null,
      issued: new Date(real.issued),
      fileExpiry: new Date(real.fileExpiry),
      ttl: 2592000,
      entitlements: [],
      maxMachines: null,
      maxUsers: null,
    });
  }
});

Deno.test("verifyLicenseFile() accepts a real Keygen file given as text", async () => {
  const [real] = REAL_FILES;
  const text = new TextDecoder().decode(await readFixture(real.id));
  const file = await verifyLicenseFile(text, {
    publicKey: keygenKey,
    licenseKey: real.key,
    now: unixSeconds(REAL_NOW),
  });
  assert.equal(file.id, real.id);
});

Deno.test("verifyLicenseFile() refuses the real Keygen files as expired today", async () => {
  for (const real of REAL_FILES) {
    await assertRefused(
      verifyLicenseFile(await readFixture(real.id), {
        publicKey: keygenKey,
        licenseKey: real.key,
        now: unixSeconds(new Date("2026-11-25T12:00:00Z")),
      }),
      LicenseFileExpiredError,
      "license_file_expired",
    );
  }
});

Deno.test("verifyLicenseFile() refuses the real Keygen files as issued in the future before 2025-12-05", async () => {
  for (const real of REAL_FILES) {
    await assertRefused(
      verifyLicenseFile(await readFixture(real.id), {
        publicKey: keygenKey,
        licenseKey: real.key,
        now: unixSeconds(new Date("2025-12-01T00:00:00Z")),
      }),
      LicenseFileIssuedInFutureError,
      "license_file_issued_in_future",
    );
  }
});

Deno.test("verifyLicenseFile() refuses a real Keygen file with the other file's key", async () => {
  const error = await assertRefused(
    verifyLicenseFile(await readFixture(REAL_FILES[0].id), {
      publicKey: keygenKey,
      licenseKey: REAL_FILES[1].key,
      now: unixSeconds(REAL_NOW),
    }),
    WrongLicenseKeyError,
    "license_key_wrong",
  );
  assert.ok(!error.message.includes(REAL_FILES[1].key), "the message must not hold the key");
});

Deno.test("verifyLicenseFile() refuses a real Keygen file with a minted public key", async () => {
  await assertRefused(
    verifyLicenseFile(await readFixture(REAL_FILES[0].id), {
      publicKey: ed25519Key,
      licenseKey: REAL_FILES[0].key,
      now: unixSeconds(REAL_NOW),
    }),
    LicenseFileNotGenuineError,
    "license_file_not_genuine",
  );
});

// Minted files, every algorithm

Deno.test("verifyLicenseFile() accepts minted files of every algorithm", async () => {
  const expiry = new Date("2027-06-30T00:00:00.000Z");
  for (const algorithm of LICENSE_FILE_ALGORITHMS) {
    const minted = await mint(algorithm, {
      expiry,
      entitlements: ["FEATURE_A", "FEATURE_B"],
      maxMachines: 5,
      maxUsers: 0,
    });
    const file = await verify(minted.certificate, minted.key, { algorithm });
    assert.deepEqual(file, {
      id: minted.id,
      key: minted.key,
      algorithm,
      expiry,
      issued: ISSUED,
      fileExpiry: new Date(ISSUED.getTime() + 2592000 * 1000),
      ttl: 2592000,
      entitlements: ["FEATURE_A", "FEATURE_B"],
      maxMachines: 5,
      maxUsers: 0,
    }, algorithm);
  }
});

Deno.test("verifyLicenseFile() accepts an RSA public key given as PKCS#1 PEM", async () => {
  const spki = Uint8Array.fromBase64(
    rsa.publicKeyText.replace(/-----[A-Z ]+-----/g, "").replace(/\s/g, ""),
  );
  // An RSA-2048 SPKI is a 24-byte prefix (SEQUENCE, AlgorithmIdentifier, BIT STRING) then PKCS#1.
  const pkcs1 = spki.subarray(24).toBase64().match(/.{1,64}/g)!.join("\n");
  const publicKey = await importPublicKey(
    `-----BEGIN RSA PUBLIC KEY-----\n${pkcs1}\n-----END RSA PUBLIC KEY-----\n`,
  );
  assert.equal(publicKey.kind, "rsa");
  for (const algorithm of ["aes-256-gcm+rsa-pss-sha256", "base64+rsa-sha256"] as const) {
    const minted = await mint(algorithm);
    assert.equal((await verify(minted.certificate, minted.key, { publicKey })).id, minted.id);
  }
});

// Framing tolerance

Deno.test("verifyLicenseFile() accepts CRLF line endings, other wrapping and surrounding whitespace", async () => {
  const minted = await mint();
  const lines = minted.certificate.trim().split("\n");
  const body = lines.slice(1, -1).join("");
  const variants = [
    minted.certificate.replaceAll("\n", "\r\n"),
    [lines[0], ...body.match(/.{1,76}/g)!, lines.at(-1)].join("\n"),
    [lines[0], body, lines.at(-1)].join("\n"),
    `\n\n  \t${minted.certificate}\n\n  `,
    `\uFEFF${minted.certificate}`,
    new TextEncoder().encode(minted.certificate.replaceAll("\n", "\r\n")),
  ];
  for (const variant of variants) {
    assert.equal((await verify(variant, minted.key)).id, minted.id);
  }
});

Deno.test("parseCertificate() returns the certificate's enc, sig and alg", async () => {
  const minted = await mint("base64+ed25519");
  const fields = parseCertificate(minted.certificate);
  assert.deepEqual(Object.keys(fields), ["enc", "sig", "alg"]);
  assert.equal(fields.alg, "base64+ed25519");
  assert.equal(JSON.parse(atob(fields.enc)).data.id, minted.id);
});

// Malformed

Deno.test("verifyLicenseFile() refuses malformed framing", async () => {
  const minted = await mint();
  const body = minted.certificate.split("\n").slice(1, -2).join("\n");
  const malformed = [
    "",
    "not a license file",
    body,
    minted.certificate.replace("-----BEGIN LICENSE FILE-----", ""),
    minted.certificate.replace("-----END LICENSE FILE-----", ""),
    minted.certificate.replace("LICENSE FILE", "CERTIFICATE"),
    "-----BEGIN LICENSE FILE-----\n-----END LICENSE FILE-----\n",
    "-----BEGIN LICENSE FILE-----\nnot*base64!\n-----END LICENSE FILE-----\n",
    frameCertificate("{not json"),
    frameCertificate('"a string"'),
    frameCertificate("[1, 2, 3]"),
    frameCertificate("null"),
    new Uint8Array([0xff, 0xfe, 0x00]),
  ];
  for (const certificate of malformed) {
    await assertRefused(
      verify(certificate, minted.key),
      MalformedLicenseFileError,
      "license_file_malformed",
    );
  }
});

Deno.test("verifyLicenseFile() refuses a certificate without enc, sig or alg", async () => {
  const minted = await mint();
  for (const field of ["enc", "sig", "alg"]) {
    for (const value of [undefined, "", 42, null]) {
      const certificate = reframe(minted.certificate, (fields) => ({ ...fields, [field]: value }));
      await assertRefused(
        verify(certificate, minted.key),
        MalformedLicenseFileError,
        "license_file_malformed",
      );
    }
  }
});

Deno.test("verifyLicenseFile() refuses a signed enc that does not have 3 well-formed parts", async () => {
  const minted = await mint();
  const [ciphertext, iv, tag] = parseCertificate(minted.certificate).enc.split(".");
  const badEncs = [
    `${ciphertext}.${iv}`,
    `${ciphertext}.${iv}.${tag}.${tag}`,
    ciphertext,
    `${ciphertext}.${iv}.not*base64`,
    `${ciphertext}.${tag}.${tag}`, // a 16-byte IV
    `${ciphertext}.${iv}.${iv}`, // a 12-byte tag
  ];
  for (const enc of badEncs) {
    const sig = await signEnc(ed25519, "aes-256-gcm+ed25519", enc);
    const certificate = frameCertificate(JSON.stringify({ enc, sig, alg: "aes-256-gcm+ed25519" }));
    await assertRefused(
      verify(certificate, minted.key),
      MalformedLicenseFileError,
      "license_file_malformed",
    );
  }
});

Deno.test("verifyLicenseFile() refuses a signed base64 enc that is not base64", async () => {
  const enc = "not*base64";
  const sig = await signEnc(ed25519, "base64+ed25519", enc);
  await assertRefused(
    verify(frameCertificate(JSON.stringify({ enc, sig, alg: "base64+ed25519" })), "KEY"),
    MalformedLicenseFileError,
    "license_file_malformed",
  );
});

Deno.test("verifyLicenseFile() refuses a genuine file whose dataset is not a license", async () => {
  const key = "LICENSE-KEY-V3";
  const meta = { issued: ISSUED.toISOString(), expiry: null, ttl: null };
  const datasets = [
    "{not json",
    "[]",
    JSON.stringify({ meta }),
    JSON.stringify({ data: { type: "licenses", attributes: { key } }, meta }),
    JSON.stringify({ data: { id: "", attributes: { key } }, meta }),
    JSON.stringify({ data: { id: "abc" }, meta }),
    JSON.stringify({ data: { id: "abc", attributes: { key: 42 } }, meta }),
    JSON.stringify({ data: { id: "abc", attributes: { key } } }),
    JSON.stringify({ data: { id: "abc", attributes: { key } }, meta: { ...meta, issued: null } }),
    JSON.stringify({ data: { id: "abc", attributes: { key } }, meta: { ...meta, issued: "nope" } }),
    JSON.stringify({ data: { id: "abc", attributes: { key } }, meta: { ...meta, ttl: "60" } }),
    JSON.stringify({ data: { id: "abc", attributes: { key } }, meta: { ...meta, ttl: 60 } }),
    JSON.stringify({ data: { id: "abc", attributes: { key, expiry: "never" } }, meta }),
  ];
  for (const algorithm of ["aes-256-gcm+ed25519", "base64+ed25519"] as const) {
    for (const dataset of datasets) {
      const certificate = await sealCertificate(ed25519, algorithm, key, dataset);
      await assertRefused(
        verify(certificate, key),
        MalformedLicenseFileError,
        "license_file_malformed",
      );
    }
  }
});

// Not genuine

Deno.test("verifyLicenseFile() refuses a file whose enc was altered", async () => {
  for (const algorithm of LICENSE_FILE_ALGORITHMS) {
    const minted = await mint(algorithm);
    const certificate = reframe(minted.certificate, (fields) => {
      const enc = fields.enc as string;
      const flipped = enc[10] === "A" ? "B" : "A";
      return { ...fields, enc: enc.slice(0, 10) + flipped + enc.slice(11) };
    });
    await assertRefused(
      verify(certificate, minted.key, { algorithm }),
      LicenseFileNotGenuineError,
      "license_file_not_genuine",
    );
  }
});

Deno.test("verifyLicenseFile() refuses a file signed by another key", async () => {
  const otherKeys = {
    ed25519: await importPublicKey(otherEd25519.publicKeyText),
    rsa: await importPublicKey(otherRsa.publicKeyText),
  };
  for (const algorithm of LICENSE_FILE_ALGORITHMS) {
    const minted = await mint(algorithm);
    const publicKey = algorithm.endsWith("+ed25519") ? otherKeys.ed25519 : otherKeys.rsa;
    await assertRefused(
      verify(minted.certificate, minted.key, { publicKey }),
      LicenseFileNotGenuineError,
      "license_file_not_genuine",
    );
  }
});

Deno.test("verifyLicenseFile() refuses a public key whose type does not match the file's algorithm", async () => {
  for (const algorithm of LICENSE_FILE_ALGORITHMS) {
    const minted = await mint(algorithm);
    const publicKey = algorithm.endsWith("+ed25519") ? rsaKey : ed25519Key;
    await assertRefused(
      verify(minted.certificate, minted.key, { publicKey }),
      LicenseFileNotGenuineError,
      "license_file_not_genuine",
    );
  }
});

Deno.test("verifyLicenseFile() refuses a sig that is not a signature", async () => {
  const minted = await mint();
  const sigs = [
    "not*base64",
    "AAAA",
    btoa("x".repeat(64)),
    parseCertificate((await mint()).certificate).sig,
  ];
  for (const sig of sigs) {
    await assertRefused(
      verify(reframe(minted.certificate, (fields) => ({ ...fields, sig })), minted.key),
      LicenseFileNotGenuineError,
      "license_file_not_genuine",
    );
  }
});

Deno.test("verifyLicenseFile() refuses a file whose alg was swapped for another supported one", async () => {
  const minted = await mint("aes-256-gcm+rsa-pss-sha256");
  const certificate = reframe(
    minted.certificate,
    (fields) => ({ ...fields, alg: "aes-256-gcm+rsa-sha256" }),
  );
  await assertRefused(
    verify(certificate, minted.key, { publicKey: rsaKey }),
    LicenseFileNotGenuineError,
    "license_file_not_genuine",
  );
});

// Wrong key

Deno.test("verifyLicenseFile() refuses a license key that is not the file's", async () => {
  for (const algorithm of LICENSE_FILE_ALGORITHMS) {
    const minted = await mint(algorithm, { key: "AAAAAA-BBBBBB-CCCCCC-DDDDDD-EEEEEE-V3" });
    for (
      const wrongKey of [
        "AAAAAA-BBBBBB-CCCCCC-DDDDDD-EEEEEF-V3",
        "",
        "aaaaaa-bbbbbb-cccccc-dddddd-eeeeee-v3",
      ]
    ) {
      const error = await assertRefused(
        verify(minted.certificate, wrongKey, { algorithm }),
        WrongLicenseKeyError,
        "license_key_wrong",
      );
      if (wrongKey) {
        assert.ok(!error.message.includes(wrongKey), "the message must not hold the key");
      }
      assert.ok(!error.message.includes(minted.key), "the message must not hold the key");
    }
  }
});

// Dates

Deno.test("verifyLicenseFile() refuses a file whose ttl has passed", async () => {
  for (const algorithm of ["aes-256-gcm+ed25519", "base64+rsa-sha256"] as const) {
    const minted = await mint(algorithm, { ttl: 3600 });
    const expiry = ISSUED.getTime() + 3600 * 1000;
    assert.ok(await verify(minted.certificate, minted.key, { algorithm, now: new Date(expiry) }));
    await assertRefused(
      verify(minted.certificate, minted.key, { algorithm, now: new Date(expiry + 1000) }),
      LicenseFileExpiredError,
      "license_file_expired",
    );
  }
});

Deno.test("verifyLicenseFile() accepts a file without ttl forever", async () => {
  const minted = await mint("aes-256-gcm+ed25519", { ttl: null });
  const file = await verify(minted.certificate, minted.key, {
    now: new Date("2099-01-01T00:00:00Z"),
  });
  assert.equal(file.ttl, null);
  assert.equal(file.fileExpiry, null);
});

Deno.test("verifyLicenseFile() ignores meta.expiry when ttl is 0", async () => {
  const key = "KEY-V3";
  const dataset = JSON.stringify({
    data: { id: "abc", type: "licenses", attributes: { key } },
    meta: { issued: ISSUED.toISOString(), expiry: ISSUED.toISOString(), ttl: 0 },
  });
  const certificate = await sealCertificate(ed25519, "aes-256-gcm+ed25519", key, dataset);
  assert.equal((await verify(certificate, key)).ttl, 0);
});

Deno.test("verifyLicenseFile() does not refuse a license whose own expiry has passed", async () => {
  // The license's expiry is the license's business; only the file's is checked.
  const expiry = new Date(ISSUED.getTime() - MINUTE);
  const minted = await mint("aes-256-gcm+ed25519", { expiry });
  assert.deepEqual((await verify(minted.certificate, minted.key)).expiry, expiry);
});

Deno.test("verifyLicenseFile() refuses a file issued more than 5 minutes in the future", async () => {
  const minted = await mint("aes-256-gcm+ed25519", {
    issued: new Date(NOW.getTime() + 5 * MINUTE + 1),
  });
  await assertRefused(
    verify(minted.certificate, minted.key),
    LicenseFileIssuedInFutureError,
    "license_file_issued_in_future",
  );
});

Deno.test("verifyLicenseFile() accepts a file issued up to 5 minutes in the future", async () => {
  for (const ahead of [1, 4 * MINUTE, 5 * MINUTE]) {
    const minted = await mint("aes-256-gcm+ed25519", { issued: new Date(NOW.getTime() + ahead) });
    assert.equal((await verify(minted.certificate, minted.key)).id, minted.id);
  }
});

Deno.test("verifyLicenseFile() honours maxClockDriftMs", async () => {
  const minted = await mint("aes-256-gcm+ed25519", { issued: new Date(NOW.getTime() + 1000) });
  const options = { publicKey: ed25519Key, licenseKey: minted.key, now: unixSeconds(NOW) };
  await assertRefused(
    verifyLicenseFile(minted.certificate, { ...options, maxClockDriftMs: 0 }),
    LicenseFileIssuedInFutureError,
    "license_file_issued_in_future",
  );
  assert.ok(await verifyLicenseFile(minted.certificate, { ...options, maxClockDriftMs: 1000 }));
});

// Unsupported algorithms

Deno.test("verifyLicenseFile() refuses an unsupported algorithm", async () => {
  const minted = await mint();
  for (const alg of ["aes-256-cbc+ed25519", "base64+ecdsa", "ED25519", "aes-256-gcm+ED25519"]) {
    const certificate = reframe(minted.certificate, (fields) => ({ ...fields, alg }));
    await assertRefused(
      verify(certificate, minted.key),
      UnsupportedAlgorithmError,
      "license_file_algorithm_unsupported",
    );
  }
});

// Public keys

Deno.test("importPublicKey() accepts hex in any case and with surrounding whitespace", async () => {
  for (const text of [KEYGEN_PUBLIC_KEY.toUpperCase(), `  ${KEYGEN_PUBLIC_KEY}\r\n`]) {
    assert.equal((await importPublicKey(text)).kind, "ed25519");
  }
  const publicKey = await importPublicKey(`\n${rsa.publicKeyText.replaceAll("\n", "\r\n")}\n`);
  assert.deepEqual(publicKey.kind === "rsa" && publicKey.modulusBits, 2048);
});

Deno.test("importPublicKey() refuses invalid public keys", async () => {
  const pemBody = rsa.publicKeyText.split("\n").slice(1, -2).join("\n");
  const invalid = [
    "",
    "   ",
    KEYGEN_PUBLIC_KEY.slice(1),
    `${KEYGEN_PUBLIC_KEY}0`,
    `${KEYGEN_PUBLIC_KEY.slice(1)}g`,
    KEYGEN_PUBLIC_KEY.slice(0, 32) + " " + KEYGEN_PUBLIC_KEY.slice(32),
    "not a key",
    pemBody,
    "-----BEGIN PUBLIC KEY-----\nZ2FyYmFnZQ==\n-----END PUBLIC KEY-----\n",
    "-----BEGIN PUBLIC KEY-----\nnot*base64\n-----END PUBLIC KEY-----\n",
    "-----BEGIN RSA PUBLIC KEY-----\nZ2FyYmFnZQ==\n-----END RSA PUBLIC KEY-----\n",
    `-----BEGIN PUBLIC KEY-----\n${pemBody}\n-----END RSA PUBLIC KEY-----\n`,
    `-----BEGIN PRIVATE KEY-----\n${pemBody}\n-----END PRIVATE KEY-----\n`,
  ];
  for (const text of invalid) {
    await assertRefused(importPublicKey(text), InvalidPublicKeyError, "public_key_invalid");
  }
});
