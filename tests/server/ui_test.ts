/**
 * The status page (`relay serve --ui`) in a real browser: headless Chromium
 * (Debian's `chromium`, which `.ci/run` installs) driven by playwright-core
 * (`./status_page_browser.ts`), which never downloads a browser of its own. The server runs in-process on a
 * clock the test moves, so the chart has hours of history without waiting.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { addMinted, childEnv, dbPath, startServer, tempDir } from "../helpers.ts";
import { call, claim, release } from "./http_support.ts";
import { FakeClock, serveInProcess } from "./in_process.ts";
import type { PageFacts } from "./status_page_browser.ts";

/** Where Debian installs Chromium. */
const CHROMIUM = "/usr/bin/chromium";

const BROWSER_SCRIPT = fileURLToPath(new URL("./status_page_browser.ts", import.meta.url));

/**
 * Loads `url` in headless Chromium (`./status_page_browser.ts`, in a process
 * of its own), writes a screenshot to `screenshot`; what the page showed.
 */
async function loadInChromium(url: string, screenshot: string): Promise<PageFacts> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does it)`);
  }
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", BROWSER_SCRIPT, CHROMIUM, url, screenshot],
    env: childEnv(),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  const stdout = decoder.decode(output.stdout);
  assert.equal(output.code, 0, `the browser failed: ${decoder.decode(output.stderr)}${stdout}`);
  return JSON.parse(stdout);
}

/** A fingerprint that would be markup if the page did not escape it. */
const HOSTILE = "fp-<img src=x onerror=alert(1)>";

Deno.test("relay serve --ui: the status page shows pools, leases, denials and history", async () => {
  await using dir = await tempDir();
  const db = dbPath(dir.path);
  const alpha = await addMinted(dir.path, 2, { pool: "alpha" });
  const beta = await addMinted(dir.path, 1, { pool: "beta" });
  const start = Math.floor(Date.now() / 1000) - 3 * 3600;
  const clock = new FakeClock(new Date(start * 1000));
  await using server = await serveInProcess(["--ui", "--ttl", "24h", "--cull-interval", "1h"], {
    database: db,
    clock,
  });

  // Three hours of leases: 1 seat, 2, 3, then a denial and a release: 2.
  assert.equal((await claim(server, "fp-a1", "alpha")).status, 201);
  clock.advance(3600);
  assert.equal((await claim(server, encodeURIComponent(HOSTILE), "beta")).status, 201);
  clock.advance(3600);
  assert.equal((await claim(server, "fp-a2", "alpha")).status, 201);
  // The server records the denial itself (license.denied).
  assert.equal((await claim(server, "fp-a3", "alpha")).status, 410);
  clock.advance(1800);
  assert.equal((await release(server, "fp-a1", "alpha")).status, 204);
  clock.advance(1800);

  const screenshot = join(dir.path, "status_page.png");
  const page = await loadInChromium(`${server.url}/ui`, screenshot);
  const artifacts = Deno.env.get("RELAY_TEST_ARTIFACTS");
  if (artifacts) {
    await Deno.mkdir(artifacts, { recursive: true });
    await Deno.copyFile(screenshot, join(artifacts, "status_page.png"));
  }
  assert.ok((await Deno.stat(screenshot)).size > 1000, "a screenshot was written");
  assert.equal(page.status, 200);
  assert.equal(page.headers["content-type"], "text/html; charset=utf-8");
  assert.match(page.headers["content-security-policy"], /^default-src 'none'; style-src 'sha256-/);

  // Pools: leased, free, expired, total.
  assert.deepEqual(page.pools, { alpha: ["1", "1", "0", "2"], beta: ["1", "0", "0", "1"] });

  // Current leases, fingerprints shown as text, never as markup.
  assert.deepEqual(page.fingerprints.toSorted(), [HOSTILE, "fp-a2"].toSorted());
  assert.equal(page.images, 0);
  assert.match(page.leasesText, /in 23h/, "expires in, with a 24h ttl");
  assert.ok(page.leasesText.includes(beta[0].id), "the license id of a lease");

  // Denials: this server's count, and the audit record.
  assert.match(page.denialCounts, /alpha: 1/);
  assert.equal(page.denialRows.length, 1);
  assert.match(page.denialRows[0], /license\.denied\s+alpha/);

  // The chart: now 2 seats, at most 3 within the last 24 hours.
  assert.equal(page.chartLabel, "Leased seats over the last 24 hours, 2 now");
  assert.match(page.chartTitle ?? "", /at most 3\)/);
  // Recent events list the release.
  assert.match(page.eventsText, /license\.released\s+alpha/);

  // The inline style applied under the page's CSP; nothing else loaded, nothing ran.
  assert.equal(page.bodyMargin, "24px");
  assert.deepEqual(page.requested, [`${server.url}/ui`]);
  assert.deepEqual(page.problems, []);

  // No license key or file anywhere in the page.
  for (const file of [...alpha, ...beta]) {
    assert.ok(!page.html.includes(file.key), "no license key in the page");
  }
  assert.ok(!page.html.includes("LICENSE FILE"), "no license file in the page");
  assert.equal((await server.stop()).code, 0);
});

Deno.test("relay serve without --ui: /ui answers as an unknown path; RELAY_UI=1 serves it", async () => {
  await using dir = await tempDir();
  {
    await using server = await startServer([], { cwd: dir.path });
    const page = await call(server.url, "GET", "/ui");
    const unknown = await call(server.url, "GET", "/no-such-path");
    assert.deepEqual({ status: page.status, body: page.body }, {
      status: unknown.status,
      body: unknown.body,
    });
    assert.equal(page.status, 404);
    assert.equal((await server.stop()).status.code, 0);
  }
  {
    await using server = await startServer([], { cwd: dir.path, env: { RELAY_UI: "1" } });
    const page = await call(server.url, "GET", "/ui");
    assert.equal(page.status, 200);
    assert.match(page.body, /<h1>Relay status<\/h1>/);
    assert.equal((await server.stop()).status.code, 0);
  }
});
