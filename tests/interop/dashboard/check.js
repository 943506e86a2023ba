// check.js - drives headless Chromium (Debian's /usr/bin/chromium, through
// playwright-core) through ternd's dashboard for test_http_dashboard.py.
//
//   node check.js '{"url": ..., "connections": N, "disconnect": ID,
//                   "profile": DIR, "screenshot": PATH or null, "settle": S}'
//
// Checks, in order, each bounded in time: the page loads (the broker's
// version is shown), the connection count and the client table show the
// test's clients, the rate chart moves while the test's publisher runs, and
// the topics view shows the publisher's topic, and
// the Disconnect button of client ID disconnects it (its row says offline
// or goes). Prints one JSON line: {"ok": true, ...} or {"ok": false,
// "error": ...}; exits 0 either way unless Chromium could not start.
"use strict";
const { chromium } = require("playwright-core");

const cfg = JSON.parse(process.argv[2]);

async function main() {
  const ctx = await chromium.launchPersistentContext(cfg.profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--no-first-run", "--disable-dev-shm-usage"],
    viewport: { width: 1280, height: 900 },
  });
  const out = { ok: false };
  try {
    const page = ctx.pages()[0] || (await ctx.newPage());
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(cfg.url, { timeout: 10000 });
    await page.waitForFunction(() => document.getElementById("version").textContent !== "",
                               null, { timeout: 10000 });
    out.version = await page.textContent("#version");

    await page.waitForFunction((n) => document.getElementById("connections").textContent === String(n),
                               cfg.connections, { timeout: 10000 });
    out.connections = Number(await page.textContent("#connections"));
    await page.waitForSelector(`#clients-table tr[data-id="${cfg.disconnect}"][data-connected="true"]`,
                               { timeout: 10000 });
    out.rows = await page.locator("#clients-table tbody tr").count();

    // The chart moves: its line changes from one sample to the next and
    // its last point is above zero.
    await page.waitForFunction(() => Number(document.getElementById("line-in").dataset.last) > 0,
                               null, { timeout: 10000 });
    const before = await page.getAttribute("#line-in", "points");
    await page.waitForFunction((b) => document.getElementById("line-in").getAttribute("points") !== b,
                               before, { timeout: 5000 });
    out.rate_in = Number(await page.getAttribute("#line-in", "data-last"));
    out.chart_moved = true;

    // The topic the publisher feeds, in the topics view.
    if (cfg.topic) {
      await page.waitForFunction((t) => [...document.querySelectorAll("#topics-table tbody tr")]
                                   .some((r) => r.cells[0].textContent === t),
                                 cfg.topic, { timeout: 10000 });
      out.topic_shown = true;
    }

    if (cfg.screenshot) {
      // "settle": seconds of chart before the picture (docs/images).
      await page.waitForTimeout(1000 * (cfg.settle || 0));
      await page.screenshot({ path: cfg.screenshot, fullPage: true });
    }

    const row = page.locator(`#clients-table tr[data-id="${cfg.disconnect}"]`);
    await row.locator("button.disconnect").click();
    await page.waitForFunction((id) => {
      const r = [...document.querySelectorAll("#clients-table tbody tr")].find((t) => t.dataset.id === id);
      return !r || r.dataset.connected === "false";
    }, cfg.disconnect, { timeout: 10000 });
    out.disconnected = true;
    out.page_errors = errors;
    out.status = await page.textContent("#status");
    out.ok = errors.length === 0;
  } catch (e) {
    out.error = String(e);
  } finally {
    await ctx.close();
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(String(e)); process.exit(2); });
