/**
 * Honest health: `relay serve` refuses to start on a database it cannot
 * write, and `GET /v1/health` answers `503` with the reason while the
 * database takes no writes (a disk that refuses them, a lock held by another
 * process), `200` again once it does.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { RELAY_PERMISSIONS } from "../../scripts/permissions.ts";
import { childEnv, type CliResult, MAIN, mintFiles, query, runCli, tempDir } from "../helpers.ts";
import { dbPath, fileArgs, runRelay } from "../cli/support.ts";
import { FakeClock, put, serveInProcess } from "./in_process.ts";

const UNWRITABLE = "database not accepting writes";

/** Adds `count` minted licenses to the database in `dir`, in-process. */
async function addLicenses(dir: string, count: number): Promise<void> {
  const { publicKey, files } = await mintFiles(dir, count);
  const result = await runRelay(["add", ...fileArgs(files), "--public-key", publicKey], {
    cwd: dir,
  });
  assert.equal(result.code, 0, result.stderr);
}

/** Runs a program to completion; throws if it cannot be started. */
async function output(command: string, args: string[]): Promise<CliResult> {
  const result = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    stdout: decoder.decode(result.stdout),
    stderr: decoder.decode(result.stderr),
  };
}

/** Whether this process runs as root, which file modes do not stop. */
function isRoot(): boolean {
  return Deno.uid() === 0;
}

/**
 * How to run a command so that file modes apply to it: as is for a normal
 * user; as root, through `setpriv` without the capabilities that let root
 * ignore them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH). No mount, no other
 * user: the repository and Deno's cache stay readable.
 */
async function modesApply(): Promise<string[]> {
  if (!isRoot()) return [];
  const prefix = [
    "setpriv",
    "--bounding-set=-dac_override,-dac_read_search",
    "--inh-caps=-dac_override,-dac_read_search",
  ];
  // Prove it before relying on it: such a root cannot write a file of mode 0444.
  await using dir = await tempDir();
  const probe = `${dir.path}/probe`;
  await Deno.writeTextFile(probe, "");
  await Deno.chmod(probe, 0o444);
  const check = await output(prefix[0], [...prefix.slice(1), "sh", "-c", `echo x > ${probe}`]);
  assert.notEqual(
    check.code,
    0,
    "running as root, and setpriv could not drop CAP_DAC_OVERRIDE: file modes cannot be tested",
  );
  return prefix;
}

/** Runs `relay ...args` in `cwd` as a real process, through `prefix` if any. */
function relayProcess(prefix: string[], args: string[], cwd: string): Promise<CliResult> {
  return runCli(args, { cwd, wrap: prefix });
}

Deno.test("relay serve refuses to start on a database it cannot write: exit 1, one line naming it", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  await addLicenses(dir.path, 1);
  const before = Deno.readFileSync(db);
  await Deno.chmod(db, 0o444);
  const prefix = await modesApply();
  try {
    const result = await relayProcess(
      prefix,
      ["serve", "--bind", "127.0.0.1", "--port", "0"],
      dir.path,
    );
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      'error: Cannot serve "./relay.sqlite": the database does not accept writes ' +
        "(attempt to write a readonly database)\n",
    );
    assert.equal(result.code, 1);
    // The same file, readable as ever: `ls` still lists it.
    const listed = await relayProcess(prefix, ["ls", "--json"], dir.path);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(JSON.parse(listed.stdout).length, 1);
  } finally {
    await Deno.chmod(db, 0o644);
  }
  assert.deepEqual(Deno.readFileSync(db), before, "the database file is untouched");
  assert.deepEqual(query(db, "SELECT count(*) AS n FROM relay_health"), [{ n: 0 }]);
});

/** A spawned `relay serve` whose process ignores SIGXFSZ, so a file size limit fails writes. */
async function spawnIgnoringXfsz(cwd: string) {
  // `trap "" XFSZ` is inherited across exec: the server keeps running and its
  // writes fail with EFBIG, as a full or failing disk would fail them.
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'trap "" XFSZ; exec "$0" "$@"',
      Deno.execPath(),
      "run",
      "--quiet",
      ...RELAY_PERMISSIONS,
      MAIN,
      "serve",
      "--bind",
      "127.0.0.1",
      "--port",
      "0",
    ],
    cwd,
    env: childEnv(),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const stderr = new Response(child.stderr).text();
  const pump = (async () => {
    let buffer = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        lines.push(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
      }
    }
  })();
  const deadline = Date.now() + 20_000;
  let startup: Record<string, unknown> | undefined;
  while (!startup) {
    startup = lines.map((line) => JSON.parse(line)).find((line) => line.msg === "relay listening");
    if (!startup && Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`relay serve did not start: ${await stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    pid: child.pid,
    url: `http://127.0.0.1:${startup.port}`,
    logs: () => lines.map((line) => JSON.parse(line)),
    async stop() {
      child.kill("SIGTERM");
      const status = await child.status;
      await pump;
      return { code: status.code, stderr: await stderr };
    },
  };
}

/** Sets the soft file size limit of process `pid` (`unlimited` or bytes); asserts it took. */
async function setFileSizeLimit(pid: number, soft: string): Promise<void> {
  const result = await output("prlimit", [`--pid=${pid}`, `--fsize=${soft}:unlimited`]);
  assert.equal(result.code, 0, `prlimit: ${result.stderr}`);
}

Deno.test("GET /v1/health answers 503 with the reason while the disk refuses writes, 200 once it takes them", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  await addLicenses(dir.path, 2);
  const server = await spawnIgnoringXfsz(dir.path);
  let stopped = false;
  try {
    const health = async () => {
      const response = await fetch(`${server.url}/v1/health`);
      return { status: response.status, body: await response.text() };
    };
    assert.deepEqual(await health(), { status: 200, body: "" });
    assert.equal((await put(server.url, "a")).status, 201);

    // No file write of the server succeeds any more: the database takes no writes.
    await setFileSizeLimit(server.pid, "0");
    const failing = await fetch(`${server.url}/v1/health`);
    assert.equal(failing.status, 503);
    assert.equal(failing.headers.get("Content-Type"), "application/json");
    assert.equal(await failing.text(), `{"error":"${UNWRITABLE}: disk I/O error"}\n`);
    assert.deepEqual(await put(server.url, "b"), {
      status: 500,
      body: { error: "internal server error" },
    });
    assert.equal((await health()).status, 503, "still failing");

    await setFileSizeLimit(server.pid, "unlimited");
    assert.deepEqual(await health(), { status: 200, body: "" });
    assert.equal((await put(server.url, "b")).status, 201);

    stopped = true;
    const { code, stderr } = await server.stop();
    assert.equal(code, 0, stderr);
    const logs = server.logs();
    assert.deepEqual(
      logs.filter((line) => line.msg === "request failed").map((line) => line.path),
      ["/v1/nodes/b"],
      "the failed claim is logged as a 500",
    );
    assert.deepEqual(
      logs.filter((line) => line.msg === "database not accepting writes").map((line) =>
        line.reason
      ),
      ["disk I/O error"],
      "logged once, when it started",
    );
    assert.equal(logs.filter((line) => line.msg === "database accepting writes again").length, 1);
  } finally {
    if (!stopped) await server.stop();
  }
  assert.deepEqual(
    query(
      db,
      "SELECT n.fingerprint FROM licenses l JOIN nodes n ON n.id = l.node_id ORDER BY n.id",
    ),
    [{ fingerprint: "a" }, { fingerprint: "b" }],
  );
  assert.deepEqual(
    query(db, "SELECT fingerprint FROM nodes ORDER BY id"),
    [{ fingerprint: "a" }, { fingerprint: "b" }],
    "the claim that failed left no row",
  );
});

Deno.test("GET /v1/health answers 503 while another connection holds the write lock", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  await addLicenses(dir.path, 1);
  // A writer waits 200 ms for the lock instead of 5 s.
  const server = await serveInProcess([], {
    cwd: dir.path,
    clock: new FakeClock(),
    global: ["--pragma", "busy_timeout=200"],
  });
  const holder = new DatabaseSync(db);
  try {
    const health = async () => {
      const response = await fetch(`${server.url}/v1/health`);
      return { status: response.status, body: await response.text() };
    };
    assert.deepEqual(await health(), { status: 200, body: "" });
    holder.exec("BEGIN IMMEDIATE");
    assert.deepEqual(await health(), {
      status: 503,
      body: `{"error":"${UNWRITABLE}: database is locked"}\n`,
    });
    assert.deepEqual(await put(server.url, "a"), {
      status: 500,
      body: { error: "internal server error" },
    });
    holder.exec("ROLLBACK");
    assert.deepEqual(await health(), { status: 200, body: "" });
    assert.equal((await put(server.url, "a")).status, 201);
  } finally {
    if (holder.isTransaction) holder.exec("ROLLBACK");
    holder.close();
    assert.equal((await server.stop()).code, 0);
  }
});

Deno.test("GET /v1/health commits a probe write each time it is asked", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const server = await serveInProcess([], {
    cwd: dir.path,
    clock: new FakeClock(new Date((1_900_000_000) * 1000)),
  });
  try {
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${server.url}/v1/health`);
      assert.equal(response.status, 200);
      assert.equal(await response.text(), "");
    }
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
  // One at start, one per check.
  assert.deepEqual(query(db, "SELECT id, probes, probed_at FROM relay_health"), [
    { id: 1, probes: 4, probed_at: 1_900_000_000 },
  ]);
});
