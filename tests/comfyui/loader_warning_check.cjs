// Opens ComfyUI's frontend in Chromium, loads a saved workflow (two loader widget values: saved before
// the settings box existed), points its loader at a model file that does not store its settings, runs
// it from the page, and reports as one JSON object on stdout what the user sees: the loader's widgets,
// the warning box on the node, the toasts; then the same after typing settings into the box.
// test_loader_files.py asserts on it.
//
//   PLAYWRIGHT_CORE=... CHROMIUM=... node loader_warning_check.cjs URL WORKFLOW_JSON MODEL SETTINGS
"use strict";
const fs = require("node:fs");
const { main, onComfyPage } = require("./comfy_page.cjs");

const [url, workflowFile, model, settings] = process.argv.slice(2);
const TIMEOUT = 300000;

async function runWith(page, settingsText) {
  return page.evaluate(async ([modelName, text, timeout]) => {
    const nodes = () => window.app.graph._nodes ?? window.app.graph.nodes;
    const loader = nodes().find((n) => n.type === "GenDRPixModelLoader");
    const widget = (name) => loader.widgets.find((w) => w.name === name);
    widget("model_name").value = modelName;
    if (text !== null) widget("settings").value = text;
    // Toasts expire (20 s) before a slow run ends: record each one as it appears.
    const toasts = [];
    const observer = new MutationObserver(() => {
      for (const t of document.querySelectorAll(".p-toast-message")) {
        if (!toasts.includes(t.textContent)) toasts.push(t.textContent);
      }
    });
    observer.observe(document.body, { childList: true, subtree: true });
    const before = new Set(Object.keys(await (await fetch("/history")).json()));
    await window.app.queuePrompt(0, 1);
    const end = Date.now() + timeout;
    let status = null;
    while (Date.now() < end && !status) {
      const history = await (await fetch("/history")).json();
      const id = Object.keys(history).find((k) => !before.has(k));
      const s = id && history[id].status;
      if (s && ["success", "error"].includes(s.status_str)) status = s.status_str;
      else await new Promise((r) => setTimeout(r, 500));
    }
    await new Promise((r) => setTimeout(r, 2000)); // the "executed" message reaches the node
    observer.disconnect();
    const box = loader.gendrPixWarning?.box;
    return {
      status,
      widgets: loader.widgets.map((w) => w.name),
      serialized: loader.serialize().widgets_values,
      warning: box?.textContent ?? null,
      shown: Boolean(box?.isConnected && box.style.display !== "none"),
      toasts,
    };
  }, [model, settingsText, TIMEOUT]);
}

main(() => {
  const report = { console: [] };
  const watch = (page) => page.on("pageerror", (e) => report.console.push(`pageerror: ${e?.message ?? e}\n${e?.stack ?? ""}`));
  return onComfyPage(url, report, async (page) => {
    const workflow = JSON.parse(fs.readFileSync(workflowFile, "utf8"));
    report.loaded = await page.evaluate(async (wf) => {
      await window.app.loadGraphData(structuredClone(wf), true, true, null);
      await new Promise((r) => setTimeout(r, 1500));
      const nodes = window.app.graph._nodes ?? window.app.graph.nodes;
      return nodes.find((n) => n.type === "GenDRPixModelLoader").serialize().widgets_values;
    }, workflow);
    report.guessed = await runWith(page, null);
    report.given = await runWith(page, settings);
  }, { timeout: TIMEOUT, node: "GenDRPixModelLoader", watch });
});
