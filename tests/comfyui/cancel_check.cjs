// Opens ComfyUI's own frontend in Chromium, builds EmptyImage -> GenDR-Pix Model Loader -> Upscale
// (tile_size 0: one whole-image pass) -> Preview Image, and reports as one JSON object on stdout:
// - "cancel": runs SIZE px x4, samples the Upscale node's `progress` (what the canvas draws as its
//   green bar) every 100 ms, runs the page's own Interrupt command (the Cancel button) once the bar
//   has moved, and times the stop as the page sees it (execution_interrupted);
// - "label": runs a 112x75 image to the end and reads the size of the Upscale node's preview image
//   (the frontend prints `naturalWidth × naturalHeight` under it).
//
//   PLAYWRIGHT_CORE=/path/to/node_modules/playwright-core CHROMIUM=/usr/bin/chromium \
//   node cancel_check.cjs URL MODEL_NAME SIZE [STEPS_BEFORE_CANCEL]
"use strict";
const { main, onComfyPage } = require("./comfy_page.cjs");

const [url, modelName, size, stepsBeforeCancel = "3"] = process.argv.slice(2);
const TIMEOUT = 1800000;

async function buildGraph(page, model, width, height) {
  return page.evaluate(({ model, width, height }) => {
    const graph = window.app.graph;
    graph.clear();
    const add = (type, pos, widgets) => {
      const node = window.LiteGraph.createNode(type);
      node.pos = pos;
      graph.add(node);
      for (const [name, value] of Object.entries(widgets)) node.widgets.find((w) => w.name === name).value = value;
      return node;
    };
    const image = add("EmptyImage", [0, 0], { width, height, batch_size: 1, color: 0x4080c0 });
    const loader = add("GenDRPixModelLoader", [0, 300], { model_name: model, precision: "fp32" });
    const upscale = add("GenDRPixUpscale", [400, 100], { scale: 4, tile_size: 0, tile_overlap: 64, color_fix: "none" });
    const preview = add("PreviewImage", [800, 100], {});
    loader.connect(0, upscale, 0);
    image.connect(0, upscale, 1);
    upscale.connect(0, preview, 0);
    return upscale.id;
  }, { model, width, height });
}

async function run(page, upscaleId, cancelAfter, timeout) {
  return page.evaluate(async ({ upscaleId, cancelAfter, timeout }) => {
    const api = window.app.api;
    const t0 = performance.now();
    const now = () => Math.round(performance.now() - t0);
    const events = [];
    let end = null;
    const onProgress = ({ detail }) => {
      if (String(detail.node) === String(upscaleId)) events.push({ t: now(), value: detail.value, max: detail.max });
    };
    const onEnd = (kind) => () => { end = end ?? { kind, t: now() }; };
    const ends = ["execution_interrupted", "execution_success", "execution_error"].map((k) => [k, onEnd(k)]);
    api.addEventListener("progress", onProgress);
    for (const [k, f] of ends) api.addEventListener(k, f);
    const node = window.app.graph.getNodeById(upscaleId);
    const bar = [];
    let cancelAt = null;
    try {
      await window.app.queuePrompt(0, 1);
      const deadline = Date.now() + timeout;
      while (!end && Date.now() < deadline) {
        const p = node.progress ?? null;
        if (bar.length === 0 || bar[bar.length - 1].progress !== p) bar.push({ t: now(), progress: p });
        const moved = events.filter((e) => e.value < e.max).length;
        if (cancelAfter > 0 && cancelAt === null && moved >= cancelAfter && bar.some((b) => b.progress > 0)) {
          cancelAt = now();
          const command = window.app.extensionManager?.command;
          if (command?.execute) await command.execute("Comfy.Interrupt");
          else await api.interrupt();
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 1500)); // the preview and "executed" reach the node
    } finally {
      api.removeEventListener("progress", onProgress);
      for (const [k, f] of ends) api.removeEventListener(k, f);
    }
    const images = (node.imgs ?? []).map((img) => [img.naturalWidth, img.naturalHeight]);
    return { events, bar, cancelAt, end, stopMs: cancelAt !== null && end ? end.t - cancelAt : null, images };
  }, { upscaleId, cancelAfter, timeout });
}

main(() => {
  const report = {};
  return onComfyPage(url, report, async (page) => {
    const big = Number(size);
    report.cancel = await run(page, await buildGraph(page, modelName, big, big), Number(stepsBeforeCancel), TIMEOUT);
    report.label = await run(page, await buildGraph(page, modelName, 112, 75), 0, TIMEOUT);
  });
});
