// Shared by the Chromium checks in this folder: opens ComfyUI's own page at URL, lets no request leave
// the test server (the frontend calls out to the internet on load), waits until this pack's nodes have
// registered, runs `body(page)`, then prints `report` as one JSON line on stdout (exit status 1 and the
// stack on stderr when anything throws). Needs PLAYWRIGHT_CORE (and CHROMIUM, else the bundled browser).
"use strict";
const { chromium } = require(process.env.PLAYWRIGHT_CORE || "playwright-core");

async function onComfyPage(url, report, body, { timeout = 180000, node = "GenDRPixUpscale",
  allow = (u) => u.hostname === new URL(url).hostname, watch = () => {} } = {}) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || undefined,
    args: ["--no-sandbox", "--disable-background-networking"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    await page.route("**/*", (route) => (allow(new URL(route.request().url())) ? route.continue() : route.abort()));
    watch(page);
    await page.goto(url, { waitUntil: "load", timeout });
    await page.waitForFunction((type) => window.app?.graph && window.LiteGraph?.registered_node_types?.[type],
      node, { timeout });
    report.frontend = await page.evaluate(() => window.__COMFYUI_FRONTEND_VERSION__ ?? null);
    await body(page);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(report) + "\n");
}

function main(run) {
  run().catch((e) => {
    process.stderr.write(String(e?.stack ?? e) + "\n");
    process.exit(1);
  });
}

module.exports = { onComfyPage, main };
