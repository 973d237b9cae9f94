// GenDR-Pix: the before/after slider of the "GenDR-Pix Compare" node.
// The node saves the first image of each input to ComfyUI's temp folder and sends
// {gendr_pix_before: [file], gendr_pix_after: [file]}; this draws both in one box, the "after"
// image clipped at the pointer's x position.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NODE_ID = "GenDRPixCompare";

function viewUrl(file) {
  const params = new URLSearchParams({
    filename: file.filename,
    subfolder: file.subfolder ?? "",
    type: file.type ?? "temp",
    rand: String(Math.random()), // a re-run writes a new file, but never show a cached one
  });
  return api.apiURL(`/view?${params}`);
}

function layer(label, side) {
  const img = document.createElement("img");
  img.alt = label;
  Object.assign(img.style, {
    position: "absolute", inset: "0", width: "100%", height: "100%", objectFit: "contain",
    pointerEvents: "none", userSelect: "none", display: "none",
  });
  const tag = document.createElement("span");
  tag.textContent = label;
  Object.assign(tag.style, {
    position: "absolute", top: "4px", [side]: "6px", padding: "1px 5px", borderRadius: "3px",
    font: "11px sans-serif", color: "#fff", background: "rgba(0,0,0,0.55)", pointerEvents: "none",
  });
  return { img, tag };
}

function buildView() {
  const root = document.createElement("div");
  root.className = "gendr-pix-compare";
  Object.assign(root.style, {
    position: "relative", width: "100%", height: "100%", minHeight: "160px", overflow: "hidden",
    background: "#111", cursor: "ew-resize",
  });
  const before = layer("before", "left");
  const after = layer("after", "right");
  const line = document.createElement("div");
  Object.assign(line.style, {
    position: "absolute", top: "0", bottom: "0", width: "2px", background: "rgba(255,255,255,0.85)",
    pointerEvents: "none",
  });
  const hint = document.createElement("div");
  hint.textContent = "Run the workflow to compare before / after";
  Object.assign(hint.style, {
    position: "absolute", inset: "0", display: "flex", alignItems: "center", justifyContent: "center",
    font: "12px sans-serif", color: "#999", pointerEvents: "none", textAlign: "center",
  });
  root.append(before.img, after.img, line, before.tag, after.tag, hint);

  const setSplit = (fraction) => {
    const pct = Math.min(100, Math.max(0, fraction * 100));
    after.img.style.clipPath = `inset(0 0 0 ${pct}%)`;
    line.style.left = `calc(${pct}% - 1px)`;
  };
  root.addEventListener("pointermove", (e) => {
    const box = root.getBoundingClientRect();
    if (box.width > 0) setSplit((e.clientX - box.left) / box.width);
  });
  root.addEventListener("pointerleave", () => setSplit(0.5));
  setSplit(0.5);

  const show = (beforeFile, afterFile) => {
    const loaded = Boolean(beforeFile && afterFile);
    hint.style.display = loaded ? "none" : "flex";
    for (const el of [line, before.tag, after.tag]) el.style.display = loaded ? "block" : "none";
    for (const [part, file] of [[before, beforeFile], [after, afterFile]]) {
      if (file) part.img.src = viewUrl(file);
      else part.img.removeAttribute("src");
      part.img.style.display = loaded ? "block" : "none";
    }
  };
  show(null, null);
  return { root, show };
}

app.registerExtension({
  name: "GenDRPix.Compare",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData?.name !== NODE_ID) return;

    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      const view = buildView();
      this.gendrPixCompare = view;
      // The view holds no value: keep it out of the API prompt (options.serialize) and out of the
      // saved widgets_values (widget.serialize), so saved workflows stay position-stable.
      const widget = this.addDOMWidget("compare_view", "gendr_pix_compare", view.root, {
        serialize: false,
        getMinHeight: () => 160,
      });
      widget.serialize = false;
      this.setSize([Math.max(this.size[0], 340), Math.max(this.size[1], 300)]);
      return result;
    };

    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      this.gendrPixCompare?.show(message?.gendr_pix_before?.[0], message?.gendr_pix_after?.[0]);
    };
  },
});
