// Opens ComfyUI's own frontend in Chromium and reports, as one JSON object on stdout, what a user would
// see of this pack there: which node types and extensions registered, how each example workflow loads
// (missing nodes, widget values, combo values, the API prompt the frontend makes of it), and, after
// running one workflow from the page, what the Compare node's slider shows. test_frontend.py asserts on it.
//
//   PLAYWRIGHT_CORE=/path/to/node_modules/playwright-core CHROMIUM=/usr/bin/chromium \
//   node frontend_check.cjs URL WORKFLOW_DIR RUN_WORKFLOW
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { chromium } = require(process.env.PLAYWRIGHT_CORE || "playwright-core");

const [url, workflowDir, runName] = process.argv.slice(2);
const TIMEOUT = 180000;

async function loadWorkflow(page, workflow) {
  return page.evaluate(async (wf) => {
    await window.app.loadGraphData(structuredClone(wf), true, true, null);
    await new Promise((r) => setTimeout(r, 1500));
    const registered = window.LiteGraph.registered_node_types;
    const nodes = window.app.graph._nodes ?? window.app.graph.nodes;
    const out = { nodes: nodes.length, missing: [], widgetMismatch: [], badCombo: [], compareViews: [] };
    for (const n of nodes) {
      if (!(n.type in registered)) out.missing.push(`${n.id}:${n.type}`);
      const saved = wf.nodes.find((x) => x.id === n.id);
      // A widget added later (optional, last) is not in older saved workflows: it takes its default.
      const storedValues = saved?.widgets_values ?? [];
      const loaded = JSON.stringify((n.serialize().widgets_values ?? []).slice(0, storedValues.length));
      const stored = JSON.stringify(storedValues);
      if (n.type !== "Note" && loaded !== stored) out.widgetMismatch.push(`${n.id}:${n.type} ${loaded} != ${stored}`);
      for (const w of n.widgets ?? []) {
        const values = w.options?.values;
        if (w.type === "combo" && Array.isArray(values) && !values.includes(w.value))
          out.badCombo.push(`${n.id}:${n.type}.${w.name}=${w.value}`);
      }
      if (n.type === "GenDRPixCompare") out.compareViews.push(Boolean(n.gendrPixCompare?.root?.isConnected));
    }
    const prompt = await window.app.graphToPrompt();
    out.classTypes = Object.values(prompt.output).map((x) => x.class_type);
    out.compareInputs = Object.values(prompt.output).filter((x) => x.class_type === "GenDRPixCompare")
      .map((x) => Object.keys(x.inputs).sort());
    return out;
  }, workflow);
}

async function runFromPage(page) {
  return page.evaluate(async (timeout) => {
    const before = new Set(Object.keys(await (await fetch("/history")).json()));
    await window.app.queuePrompt(0, 1);
    const end = Date.now() + timeout;
    while (Date.now() < end) {
      const history = await (await fetch("/history")).json();
      const id = Object.keys(history).find((k) => !before.has(k));
      const status = id && history[id].status;
      if (status && status.completed !== undefined && ["success", "error"].includes(status.status_str)) {
        await new Promise((r) => setTimeout(r, 1500)); // the "executed" message reaches the node
        const nodes = window.app.graph._nodes ?? window.app.graph.nodes;
        const compare = nodes.filter((n) => n.type === "GenDRPixCompare").map((n) =>
          [...n.gendrPixCompare.root.querySelectorAll("img")].map((img) => ({
            alt: img.alt, shown: img.style.display !== "none", loaded: img.complete && img.naturalWidth > 0,
            width: img.naturalWidth, height: img.naturalHeight })));
        return { status: status.status_str, errors: status.messages.filter(([k]) => k.includes("error")), compare };
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    return { status: "timeout" };
  }, TIMEOUT);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || undefined,
    args: ["--no-sandbox", "--disable-background-networking"],
  });
  const report = { console: [], workflows: {} };
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    page.on("console", (m) => { if (m.type() === "error") report.console.push(m.text()); });
    page.on("pageerror", (e) => report.console.push(`pageerror: ${e?.message ?? e}`));
    page.on("requestfailed", (r) => report.console.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
    page.on("response", (r) => { if (r.status() >= 400) report.console.push(`HTTP ${r.status()}: ${r.url()}`); });
    await page.goto(url, { waitUntil: "load", timeout: TIMEOUT });
    await page.waitForFunction(() => window.app?.graph && window.LiteGraph?.registered_node_types?.GenDRPixUpscale,
      null, { timeout: TIMEOUT });
    Object.assign(report, await page.evaluate(async () => ({
      frontend: window.__COMFYUI_FRONTEND_VERSION__ ?? null,
      nodeTypes: Object.keys(window.LiteGraph.registered_node_types).filter((k) => k.startsWith("GenDRPix")).sort(),
      extensions: (window.app.extensions ?? []).map((e) => e.name).filter((n) => n.startsWith("GenDRPix")),
      templates: await (await fetch("/api/workflow_templates")).json(),
    })));
    for (const file of fs.readdirSync(workflowDir).filter((f) => f.endsWith(".json")).sort()) {
      const name = path.basename(file, ".json");
      const workflow = JSON.parse(fs.readFileSync(path.join(workflowDir, file), "utf8"));
      report.workflows[name] = await loadWorkflow(page, workflow);
      if (name === runName) report.workflows[name].run = await runFromPage(page);
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(report) + "\n");
})().catch((e) => {
  process.stderr.write(String(e?.stack ?? e) + "\n");
  process.exit(1);
});
