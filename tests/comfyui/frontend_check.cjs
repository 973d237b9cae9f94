// Opens ComfyUI's own frontend in Chromium and reports, as one JSON object on stdout, what a user would
// see of this pack there: which node types and extensions registered; Browse Templates -> PACK_FOLDER
// (card order, titles, descriptions, thumbnails); each template opened from there and run from the page
// (its status, and what the Compare node's slider shows); how each example workflow file loads (missing
// nodes, widget values, combo values, the API prompt the frontend makes of it). test_frontend.py asserts on it.
// Every request not to the ComfyUI server is aborted (the frontend calls the internet on page load).
//
//   PLAYWRIGHT_CORE=/path/to/node_modules/playwright-core CHROMIUM=/usr/bin/chromium \
//   node frontend_check.cjs URL WORKFLOW_DIR PACK_FOLDER
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { main, onComfyPage } = require("./comfy_page.cjs");

const [url, workflowDir, packFolder] = process.argv.slice(2);
const TIMEOUT = 180000;
const RUN_TIMEOUT = 600000;  // one run of a template on a busy CPU (the server tests allow the same)

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

async function openTemplateBrowser(page) {
  // A fresh ComfyUI opens it by itself on the first visit; otherwise the menu's command does.
  const dialog = page.getByRole("dialog");
  await page.waitForTimeout(1000);
  if ((await dialog.count()) === 0) {
    await page.evaluate(() => window.app.extensionManager.command.execute("Comfy.BrowseTemplates"));
  }
  await dialog.getByText(packFolder, { exact: true }).first().click({ timeout: TIMEOUT });  // the pack's category
  await dialog.locator('[data-testid^="template-workflow-"]').first().waitFor({ timeout: TIMEOUT });
  return dialog;
}

async function templateCards(page) {
  const dialog = await openTemplateBrowser(page);
  await page.waitForFunction(() => [...document.querySelectorAll('[role="dialog"] [data-testid^="template-workflow-"]')]
    .every((card) => [...card.querySelectorAll("img")].some((img) => img.complete && img.naturalWidth > 0)),
    null, { timeout: 60000 }).catch(() => {});  // thumbnails load lazily; a missing one is reported below
  const cards = await dialog.locator('[data-testid^="template-workflow-"]').evaluateAll((nodes) => nodes.map((card) => ({
    name: card.dataset.testid.replace(/^template-workflow-/, ""),
    title: card.querySelector("h3")?.textContent.trim() ?? null,
    description: card.querySelector("p")?.textContent.trim() ?? null,
    thumbnails: [...card.querySelectorAll("img")].filter((img) => img.complete && img.naturalWidth > 0)
      .map((img) => [img.naturalWidth, img.naturalHeight]),
  })));
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "detached", timeout: 10000 }).catch(() => {});
  return cards;
}

async function openTemplate(page, name) {
  const dialog = await openTemplateBrowser(page);
  await dialog.locator(`[data-testid="template-workflow-${name}"]`).click();
  await page.waitForFunction((n) => window.app.extensionManager.workflow.activeWorkflow?.filename === n,
    name, { timeout: TIMEOUT });
  await page.waitForTimeout(1500);  // the graph settles (widgets, Compare view)
  return page.evaluate(() => (window.app.graph._nodes ?? window.app.graph.nodes).map((n) => `${n.id}:${n.type}`).sort());
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
  }, RUN_TIMEOUT);
}

main(() => {
  const report = { console: [], workflows: {}, opened: {} };
  const server = new URL(url).host;
  const watch = (page) => {
    page.on("console", (m) => { if (m.type() === "error") report.console.push(m.text()); });
    page.on("pageerror", (e) => report.console.push(`pageerror: ${e?.message ?? e}`));
    page.on("requestfailed", (r) => report.console.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
    page.on("response", (r) => { if (r.status() >= 400) report.console.push(`HTTP ${r.status()}: ${r.url()}`); });
  };
  return onComfyPage(url, report, async (page) => {
    Object.assign(report, await page.evaluate(async () => ({
      nodeTypes: Object.keys(window.LiteGraph.registered_node_types).filter((k) => k.startsWith("GenDRPix")).sort(),
      extensions: (window.app.extensions ?? []).map((e) => e.name).filter((n) => n.startsWith("GenDRPix")),
      templates: await (await fetch("/api/workflow_templates")).json(),
    })));
    report.cards = await templateCards(page);
    for (const { name } of report.cards) {  // as a user would: open from Browse Templates, press Run
      report.opened[name] = { nodes: await openTemplate(page, name) };
      report.opened[name].run = await runFromPage(page);
    }
    for (const file of fs.readdirSync(workflowDir).filter((f) => f.endsWith(".json")).sort()) {
      const name = path.basename(file, ".json");
      const workflow = JSON.parse(fs.readFileSync(path.join(workflowDir, file), "utf8"));
      report.workflows[name] = await loadWorkflow(page, workflow);
    }
  }, { timeout: TIMEOUT, allow: (u) => u.host === server, watch });
});
