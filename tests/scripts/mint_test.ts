import assert from "node:assert/strict";
import { importPublicKey, parseCertificate, verifyLicenseFile } from "../../lib/license_file.ts";
import {
  DEFAULT_TTL_SECONDS,
  generateKeyPair,
  main,
  mintLicenseFile,
  parseMintArgs,
} from "../../scripts/mint.ts";
import { unixSeconds } from "../../lib/time.ts";
import { KEYGEN } from "../helpers.ts";

const REAL_FILE = KEYGEN.licenses[0].path;
const REAL_KEY = KEYGEN.licenses[0].key;

/** Runs the mint CLI silently. */
function mint(args: string[]): Promise<number> {
  return main(args, () => {}, () => {});
}

/** Decrypts an `aes-256-gcm+*` certificate's dataset without the verifier. */
async function decryptDataset(certificate: string, licenseKey: string) {
  const [ciphertext, iv, tag] = parseCertificate(certificate).enc.split(".").map((part) =>
    Uint8Array.fromBase64(part)
  );
  const secret = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(licenseKey));
  const key = await crypto.subtle.importKey("raw", secret, "AES-GCM", false, ["decrypt"]);
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv },
    key,
    new Uint8Array([...ciphertext, ...tag]),
  );
  return JSON.parse(new TextDecoder().decode(plain));
}

/** The text's structure: line lengths, with the header and footer lines themselves. */
function shape(certificate: string): (string | number)[] {
  return certificate.split("\n").map((line) => line.startsWith("-----") ? line : line.length);
}

Deno.test("mintLicenseFile() frames certificates like Keygen's", async () => {
  const real = await Deno.readTextFile(REAL_FILE);
  const minted = await mintLicenseFile(await generateKeyPair("ed25519"));
  const [realShape, mintedShape] = [shape(real.trimEnd() + "\n"), shape(minted.certificate)];
  assert.deepEqual(mintedShape.slice(0, 2), realShape.slice(0, 2)); // header, then a 60-column line
  assert.deepEqual(mintedShape.slice(-2), realShape.slice(-2)); // footer, then a final newline
  assert.ok(mintedShape.slice(1, -3).every((length) => length === 60));
  assert.deepEqual(Object.keys(parseCertificate(minted.certificate)), ["enc", "sig", "alg"]);
  assert.match(minted.key, /^([0-9A-F]{6}-){5}V3$/);
});

Deno.test("mintLicenseFile() writes a dataset with the members of a real Keygen one", async () => {
  const realDataset = await decryptDataset(await Deno.readTextFile(REAL_FILE), REAL_KEY);
  const minted = await mintLicenseFile(await generateKeyPair("ed25519"), {
    issued: new Date("2026-01-01T00:00:00Z"),
  });
  const dataset = await decryptDataset(minted.certificate, minted.key);
  for (const path of [[], ["data"], ["data", "attributes"], ["data", "relationships"], ["meta"]]) {
    const members = (value: Record<string, unknown>) =>
      Object.keys(path.reduce((node, name) => node[name] as Record<string, unknown>, value));
    assert.deepEqual(members(dataset), members(realDataset), path.join("."));
  }
  assert.deepEqual(dataset.meta, {
    issued: "2026-01-01T00:00:00.000Z",
    expiry: "2026-01-31T00:00:00.000Z",
    ttl: 2592000,
  });
});

Deno.test("mint CLI writes a public key, license files and keys that verify", async () => {
  const out = await Deno.makeTempDir();
  try {
    const code = await mint(["--out", out, "--count", "3", "--entitlement", "FEATURE_A"]);
    assert.equal(code, 0);
    const publicKey = await importPublicKey(await Deno.readTextFile(`${out}/public_key`));
    const names = [...Deno.readDirSync(out)].map((entry) => entry.name).sort();
    const ids = names.filter((name) => name.endsWith(".lic")).map((name) => name.slice(0, -4));
    assert.equal(ids.length, 3);
    assert.equal(names.length, 7);
    for (const id of ids) {
      const licenseKey = await Deno.readTextFile(`${out}/${id}.key`);
      const file = await verifyLicenseFile(await Deno.readFile(`${out}/${id}.lic`), {
        publicKey,
        licenseKey,
        now: unixSeconds(new Date()),
      });
      assert.equal(file.id, id);
      assert.deepEqual(file.entitlements, ["FEATURE_A"]);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("mint CLI --expired --rsa writes files that are genuine but expired", async () => {
  const out = await Deno.makeTempDir();
  try {
    assert.equal(
      await mint(["--out", out, "--rsa", "--algorithm=base64+rsa-sha256", "--expired"]),
      0,
    );
    const publicKey = await importPublicKey(await Deno.readTextFile(`${out}/public_key`));
    assert.equal(publicKey.kind, "rsa");
    const id = [...Deno.readDirSync(out)].find((entry) => entry.name.endsWith(".lic"))!.name
      .slice(0, -4);
    const options = { publicKey, licenseKey: await Deno.readTextFile(`${out}/${id}.key`) };
    const certificate = await Deno.readTextFile(`${out}/${id}.lic`);
    await assert.rejects(
      verifyLicenseFile(certificate, { ...options, now: unixSeconds(new Date()) }),
      {
        code: "license_file_expired",
      },
    );
    // Issued one ttl (30 days) and one day before the mint ran, so genuine a minute later.
    const then = new Date(Date.now() - 31 * 86_400_000 + 60_000);
    const file = await verifyLicenseFile(certificate, { ...options, now: unixSeconds(then) });
    assert.equal(file.algorithm, "base64+rsa-sha256");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("mint CLI refuses bad arguments with exit code 2", async () => {
  for (
    const args of [
      [],
      ["--out"],
      ["--out", "x", "--count", "0"],
      ["--out", "x", "--algorithm", "aes-256-cbc+ed25519"],
      ["--out", "x", "--rsa", "--algorithm", "base64+ed25519"],
      ["--out", "x", "--ttl", "none", "--expired"],
      ["--out", "x", "--bogus"],
    ]
  ) {
    assert.equal(await mint(args), 2, args.join(" "));
  }
});

Deno.test("parseMintArgs() has the defaults of the usage text", () => {
  const quiet = { print: () => {}, printError: () => {} };
  assert.deepEqual(parseMintArgs(["--out", "dir"], quiet), {
    kind: "run",
    options: {
      out: "dir",
      count: 1,
      algorithm: "aes-256-gcm+ed25519",
      kind: "ed25519",
      ttl: DEFAULT_TTL_SECONDS,
      expired: false,
      entitlements: [],
      maxMachines: null,
      maxUsers: null,
    },
  });
  assert.deepEqual(
    parseMintArgs(
      ["--out=dir", "--rsa", "--ttl", "none", "--entitlement", "A", "--entitlement=B"],
      quiet,
    ),
    {
      kind: "run",
      options: {
        out: "dir",
        count: 1,
        algorithm: "aes-256-gcm+rsa-pss-sha256",
        kind: "rsa",
        ttl: null,
        expired: false,
        entitlements: ["A", "B"],
        maxMachines: null,
        maxUsers: null,
      },
    },
  );
});

Deno.test("mint CLI says why it refuses an argument", async (t) => {
  const cases: [string[], string][] = [
    [[], "error: required option '--out <dir>' not specified"],
    [
      ["--out", "x", "--count", "0"],
      "'--count <n>' argument '0' is invalid. Expected a positive integer",
    ],
    [
      ["--out", "x", "--algorithm", "aes-256-cbc+ed25519"],
      `Unknown algorithm "aes-256-cbc+ed25519"`,
    ],
    [
      ["--out", "x", "--rsa", "--algorithm", "base64+ed25519"],
      `--rsa conflicts with --algorithm "base64+ed25519"`,
    ],
    [["--out", "x", "--ttl", "-5"], "Expected a positive number of seconds, or none"],
    [
      ["--out", "x", "--ttl", "none", "--expired"],
      "--expired needs a ttl: without one a file never expires",
    ],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" ") || "(none)", async () => {
      const stderr: string[] = [];
      assert.equal(await main(args, () => {}, (text) => stderr.push(text)), 2);
      assert.ok(stderr.join("\n").includes(message), stderr.join("\n"));
    });
  }
});

Deno.test("deno task mint prints its help and mints files, with only --allow-write", async () => {
  const task = (...args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "mint", ...args],
      cwd: new URL("../..", import.meta.url),
      stdout: "piped",
      stderr: "piped",
    }).output();
  const help = await task("--help");
  assert.equal(help.code, 0, new TextDecoder().decode(help.stderr));
  const text = new TextDecoder().decode(help.stdout);
  assert.match(text, /^Usage: deno task mint --out DIR \[options\]/);
  for (
    const flag of [
      "--out",
      "--count",
      "--algorithm",
      "--rsa",
      "--ttl",
      "--expired",
      "--entitlement",
    ]
  ) {
    assert.ok(text.includes(`  ${flag} `), flag);
  }
  const out = await Deno.makeTempDir();
  try {
    const minted = await task("--out", out, "--count", "2");
    assert.equal(minted.code, 0, new TextDecoder().decode(minted.stderr));
    assert.equal(
      new TextDecoder().decode(minted.stdout).trim(),
      `Minted 2 license file(s) (aes-256-gcm+ed25519, ttl ${DEFAULT_TTL_SECONDS} s) into ${out}`,
    );
    assert.equal([...Deno.readDirSync(out)].length, 5);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
