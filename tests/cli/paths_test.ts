/**
 * Paths on the command line are the user's: relative ones resolve against
 * the folder the command was run in, also through `deno task` (which runs in
 * the `deno.json` folder and passes the user's folder as `INIT_CWD`), and
 * messages quote them as typed.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type Io, run } from "../../cli/program.ts";
import { verifySignature } from "../../server/signing.ts";
import {
  type CliResult,
  KEYGEN,
  KEYGEN_FIXTURES,
  mintFiles,
  query,
  runDeno,
  tempDir,
} from "../helpers.ts";
import { exists, runRelay, storedGuids } from "./support.ts";

const DENO_JSON = fileURLToPath(new URL("../../deno.json", import.meta.url));

/** The name of a file inside its folder: what a user in that folder types. */
function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

Deno.test("relay add and the database take relative paths from INIT_CWD", async (t) => {
  await using dir = await tempDir();
  const { publicKey, files } = await mintFiles(dir.path, 4);
  await Deno.writeTextFile(`${dir.path}/keygen.pub`, `${publicKey}\n`);
  await Deno.mkdir(`${dir.path}/sub`);

  await t.step("--file, --public-key and --database, relative", async () => {
    const name = baseName(files[0].path);
    const result = await runRelay(
      ["-vvv", "add", "--file", name, "--key", files[0].key, "--public-key", "keygen.pub"].concat(
        ["--database", "sub/flag.sqlite"],
      ),
      { cwd: dir.path },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `license added successfully: ${files[0].id}\n`);
    assert.deepEqual(await storedGuids(`${dir.path}/sub/flag.sqlite`), [files[0].id]);
    // The log names the file as typed.
    assert.equal(JSON.parse(result.stderr).file, name);
  });

  await t.step("RELAY_DATABASE and RELAY_PUBLIC_KEY (a file), relative", async () => {
    const result = await runRelay(
      ["add", "--file", baseName(files[1].path), "--key", files[1].key],
      { cwd: dir.path, env: { RELAY_DATABASE: "sub/env.sqlite", RELAY_PUBLIC_KEY: "keygen.pub" } },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(await storedGuids(`${dir.path}/sub/env.sqlite`), [files[1].id]);
  });

  await t.step("the default ./relay.sqlite", async () => {
    const result = await runRelay(
      ["add", "--file", baseName(files[2].path), "--key", files[2].key, "--public-key", publicKey],
      { cwd: dir.path },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(await storedGuids(`${dir.path}/relay.sqlite`), [files[2].id]);
  });

  await t.step("absolute paths are taken as they are", async () => {
    await using elsewhere = await tempDir();
    const db = `${dir.path}/sub/absolute.sqlite`;
    const result = await runRelay(
      ["add", "--file", files[3].path, "--key", files[3].key, "--public-key", publicKey].concat(
        ["--database", db],
      ),
      { cwd: elsewhere.path },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(await storedGuids(db), [files[3].id]);
    assert.equal(await exists(`${elsewhere.path}/relay.sqlite`), false);
  });

  const refusals: [string, string[], string][] = [
    [
      "a missing license file",
      ["add", "--file", "missing.lic", "--key", files[0].key, "--public-key", publicKey],
      'error: Cannot read license file "missing.lic": no such file\n',
    ],
    [
      "a missing public key file",
      ["add", "--file", baseName(files[0].path), "--key", files[0].key, "--public-key", "no.pub"],
      '"no.pub": no such file\n',
    ],
    [
      "a database in a missing folder",
      ["--database", "no/such/relay.sqlite", "ls"],
      'error: Cannot open database "no/such/relay.sqlite": no such file\n',
    ],
  ];
  for (const [name, args, says] of refusals) {
    await t.step(`${name}: the message quotes the path as typed`, async () => {
      const result = await runRelay(args, { cwd: dir.path });
      assert.equal(result.code, 1);
      assert.equal(result.stdout, "");
      assert.ok(result.stderr.startsWith("error: "), result.stderr);
      assert.ok(result.stderr.endsWith(says), result.stderr);
      assert.ok(!result.stderr.includes(dir.path), `no resolved path: ${result.stderr}`);
    });
  }
});

/** `relay serve` in this process, stopped through `io.shutdown`. */
async function serveInProcess(args: string[], env: Record<string, string>) {
  let stdout = "";
  let stderr = "";
  const shutdown = new AbortController();
  const io: Io = {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    env,
    stdoutIsTerminal: false,
    stderrIsTerminal: false,
    now: () => new Date(),
    shutdown: shutdown.signal,
  };
  const exited = run(["serve", "--bind", "127.0.0.1", "--port", "0", ...args], io);
  let code: number | undefined;
  exited.then((value) => (code = value));
  const deadline = Date.now() + 20_000;
  while (!stdout.includes('"relay listening"')) {
    if (code !== undefined || Date.now() > deadline) {
      shutdown.abort();
      throw new Error(`relay serve did not start (${code}): ${stderr}${stdout}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const startup = JSON.parse(stdout.split("\n").find((line) => line.includes("relay listening"))!);
  return {
    startup,
    url: `http://127.0.0.1:${startup.port}`,
    async stop(): Promise<CliResult> {
      shutdown.abort();
      return { code: await exited, stdout, stderr };
    },
  };
}

Deno.test("relay serve takes its secret and TLS files relative to INIT_CWD", async (t) => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/secret.txt`, "rel-s3cret\n");
  await Deno.writeTextFile(`${dir.path}/empty.txt`, "\n");
  await Deno.writeTextFile(`${dir.path}/cert.pem`, "not a certificate\n");
  await Deno.writeTextFile(`${dir.path}/key.pem`, "not a key\n");
  const base = ["serve", "--bind", "127.0.0.1", "--port", "0"];

  await t.step("RELAY_SIGNING_SECRET_FILE, relative", async () => {
    // An in-memory database, which is a name and not a path: no file appears.
    const server = await serveInProcess(["--database", ":memory:"], {
      INIT_CWD: dir.path,
      RELAY_SIGNING_SECRET_FILE: "secret.txt",
    });
    let result: CliResult | undefined;
    try {
      assert.equal(server.startup.database, ":memory:");
      assert.equal(server.startup.signing, true);
      const response = await fetch(`${server.url}/v1/health`);
      const body = await response.text();
      assert.equal(response.status, 200);
      const header = response.headers.get("relay-signature");
      const now = Math.floor(Date.now() / 1000);
      assert.equal(await verifySignature(header, body, { secret: "rel-s3cret", now }), true);
    } finally {
      result = await server.stop();
    }
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await exists(`${dir.path}/:memory:`), false);
  });

  const refusals: [string, string[], number, string][] = [
    [
      "a missing --signing-secret-file",
      ["--signing-secret-file", "nope.txt"],
      1,
      'error: Cannot read signing secret file "nope.txt": no such file\n',
    ],
    [
      "an empty --signing-secret-file",
      ["--signing-secret-file", "empty.txt"],
      2,
      'error: Signing secret file "empty.txt" holds no secret\n',
    ],
    [
      "a missing --tls-cert",
      ["--tls-cert", "none.pem", "--tls-key", "key.pem"],
      1,
      'error: Cannot read TLS certificate "none.pem": no such file\n',
    ],
  ];
  for (const [name, args, code, message] of refusals) {
    await t.step(name, async () => {
      const result = await runRelay([...base, ...args], { cwd: dir.path });
      assert.equal(result.code, code);
      assert.equal(result.stderr, message);
    });
  }

  await t.step("--tls-cert and --tls-key found, though not PEM", async () => {
    const result = await runRelay([...base, "--tls-cert", "cert.pem", "--tls-key", "key.pem"], {
      cwd: dir.path,
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: Cannot serve HTTPS: [^\n]*\n$/);
  });
});

/** Runs `deno task -q [--config deno.json] relay ...args` in `cwd`, in a clean environment. */
function denoTask(args: string[], options: { cwd: string; config?: boolean }): Promise<CliResult> {
  const config = options.config ? ["--config", DENO_JSON] : [];
  return runDeno(["task", "-q", ...config, "relay", ...args], { cwd: options.cwd });
}

Deno.test("deno task relay reads paths relative to the folder it was run in", async (t) => {
  await using dir = await tempDir();

  await t.step("the real Keygen files, from their folder: refused as expired", async () => {
    // The files expired on 2026-01-04 and a process has no clock to set, so the
    // refusal for expiry shows that both files were found and read.
    const db = `${dir.path}/keygen.sqlite`;
    const result = await denoTask(
      [
        "add",
        ...KEYGEN.licenses.flatMap(({ path, key }) => ["--file", baseName(path), "--key", key]),
        "--public-key",
        KEYGEN.publicKey,
        "--database",
        db,
      ],
      { cwd: KEYGEN_FIXTURES },
    );
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stdout, "");
    assert.ok(result.stderr.startsWith("error: "), result.stderr);
    assert.ok(result.stderr.includes("expired"), result.stderr);
    assert.ok(!result.stderr.includes("no such file"), result.stderr);
    assert.ok(result.stderr.includes(`"${baseName(KEYGEN.licenses[0].path)}"`), result.stderr);
    assert.deepEqual(await storedGuids(db), []);
  });

  const { publicKey, files } = await mintFiles(dir.path, 1);
  await Deno.writeTextFile(`${dir.path}/keygen.pub`, publicKey);

  await t.step("minted files, from a folder outside the project", async () => {
    const name = baseName(files[0].path);
    const result = await denoTask(
      ["add", "--file", name, "--key", files[0].key, "--public-key", "keygen.pub"],
      { cwd: dir.path, config: true },
    );
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.equal(result.stdout, `license added successfully: ${files[0].id}\n`);
    // INIT_CWD was this folder: the default database is here, not beside deno.json.
    assert.deepEqual(
      query(`${dir.path}/relay.sqlite`, "SELECT guid FROM licenses"),
      [{ guid: files[0].id }],
    );
    const listed = await denoTask(["ls", "--json"], { cwd: dir.path, config: true });
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout).map((l: { id: string }) => l.id), [files[0].id]);
  });

  await t.step("a missing file is named as typed", async () => {
    const result = await denoTask(
      ["add", "--file", "missing.lic", "--key", files[0].key, "--public-key", "keygen.pub"],
      { cwd: dir.path, config: true },
    );
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.equal(result.stderr, 'error: Cannot read license file "missing.lic": no such file\n');
  });
});
