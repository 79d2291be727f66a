/**
 * Loads the status page in headless Chromium (Debian's `chromium`, driven by
 * playwright-core, which never downloads a browser of its own), writes a
 * screenshot and prints what the page shows as one JSON object
 * ({@link PageFacts}) for `ui_test.ts` to assert on.
 *
 * A separate process because playwright-core probes paths (WSL detection
 * under `/proc`) that Deno grants only with `--allow-all`, which the test
 * suite does not run with: `ui_test.ts` runs this with `deno run -A`.
 *
 * Usage: `deno run -A tests/server/status_page_browser.ts /usr/bin/chromium <url> <shot.png>`
 *
 * @module
 */

import { chromium } from "playwright-core";

/** What the browser saw. */
export interface PageFacts {
  status: number;
  headers: Record<string, string>;
  /** The numeric cells of each pool's row, by its `data-pool`. */
  pools: Record<string, string[]>;
  fingerprints: string[];
  /** `<img>` elements anywhere in the page. */
  images: number;
  leasesText: string;
  denialCounts: string;
  denialRows: string[];
  eventsText: string;
  chartLabel: string | null;
  chartTitle: string | null;
  /** The body's computed top margin: the inline style applied under the CSP. */
  bodyMargin: string;
  /** Every URL the page requested. */
  requested: string[];
  /** Console messages and page errors (CSP violations show up here). */
  problems: string[];
  html: string;
}

async function main([chromiumPath, url, screenshot]: string[]): Promise<void> {
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    const page = await browser.newPage();
    const requested: string[] = [];
    const problems: string[] = [];
    page.on("request", (request) => requested.push(request.url()));
    page.on("console", (message) => problems.push(message.text()));
    page.on("pageerror", (error) => problems.push(error.message));
    const response = await page.goto(url);
    await page.screenshot({ path: screenshot, fullPage: true });
    const pools: Record<string, string[]> = {};
    for (const row of await page.locator("#pools tr[data-pool]").all()) {
      pools[(await row.getAttribute("data-pool"))!] = await row.locator("td.num")
        .allTextContents();
    }
    const facts: PageFacts = {
      status: response?.status() ?? 0,
      headers: response?.headers() ?? {},
      pools,
      fingerprints: await page.locator("#leases code.fingerprint").allTextContents(),
      images: await page.locator("img").count(),
      leasesText: await page.locator("#leases").innerText(),
      denialCounts: await page.locator("#denial-counts").innerText(),
      denialRows: await page.locator("#denials tbody tr").allInnerTexts(),
      eventsText: await page.locator("#events").innerText(),
      chartLabel: await page.locator("#seat-chart").getAttribute("aria-label"),
      chartTitle: await page.locator("#seat-chart title").textContent(),
      // A string: this module's type check has no DOM library.
      bodyMargin: await page.evaluate("getComputedStyle(document.body).marginTop"),
      requested,
      problems,
      html: await page.content(),
    };
    console.log(JSON.stringify(facts));
  } finally {
    await browser.close();
  }
}

if (import.meta.main) await main(Deno.args);
