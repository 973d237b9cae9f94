// GenDR-Pix: shows the Model Loader's warning on the node and as a toast.
// A model file that does not store its settings (a diffusers folder's weights, an LDM .ckpt, a bare
// UNet) loads with guessed values; the node sends {gendr_pix_warning: [text]} naming each guess and
// how to set it ("" when nothing was guessed). ComfyUI re-sends it when the node's output is cached.
import { app } from "../../scripts/app.js";

const NODE_ID = "GenDRPixModelLoader";

function buildBox() {
  const box = document.createElement("div");
  box.className = "gendr-pix-loader-warning";
  Object.assign(box.style, {
    font: "11px sans-serif", lineHeight: "1.35", color: "#f2c94c", background: "rgba(80, 60, 0, 0.35)",
    border: "1px solid rgba(242, 201, 76, 0.6)", borderRadius: "4px", padding: "4px 6px",
    overflowY: "auto", whiteSpace: "pre-wrap", boxSizing: "border-box", width: "100%", height: "100%",
  });
  return box;
}

function showWarning(node, text) {
  if (!text && !node.gendrPixWarning) return;
  if (!node.gendrPixWarning) {
    const box = buildBox();
    // The box holds no value: keep it out of the API prompt and the saved widgets_values.
    const widget = node.addDOMWidget("loader_warning", "gendr_pix_warning", box, {
      serialize: false,
      getMinHeight: () => (box.textContent ? 90 : 0),
    });
    widget.serialize = false;
    node.gendrPixWarning = { box, shown: "" };
  }
  const state = node.gendrPixWarning;
  state.box.textContent = text ? `\u26a0 ${text}` : "";
  state.box.style.display = text ? "block" : "none";
  const size = node.computeSize();
  node.setSize([Math.max(node.size[0], text ? 360 : size[0]), text ? Math.max(node.size[1], size[1]) : size[1]]);
  node.setDirtyCanvas?.(true, true);
  if (text && text !== state.shown) {
    app.extensionManager?.toast?.add?.({
      severity: "warn", summary: "GenDR-Pix Model Loader", detail: text, life: 20000,
    });
  }
  state.shown = text;
}

app.registerExtension({
  name: "GenDRPix.LoaderWarning",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData?.name !== NODE_ID) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const text = message?.gendr_pix_warning?.[0];
      if (typeof text === "string") showWarning(this, text);
    };
  },
});
