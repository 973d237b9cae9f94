// GenDR-Pix: this pack's example workflows in Browse Templates, in the order of their names
// ("GenDR-Pix 1 - ...", "GenDR-Pix 2 - ...": the basic one first).
// ComfyUI's /api/workflow_templates lists a pack's templates in file-system order (glob, unsorted:
// hash order on ext4), and the frontends pinned by ComfyUI 0.3.64 and 0.9.2 show them in that order
// with no way for a pack to say otherwise. So the frontend's own call is wrapped once, at load time,
// and only this pack's list is sorted; every other pack's list and the call's result shape are left
// as they were. If the frontend changes, the wrapper falls back to the original call.
import { api } from "../../scripts/api.js";

// The response keys each pack's list by its folder under custom_nodes/, which also names the URL
// this file is served from: /extensions/<folder>/templates.js.
const PACK_FOLDER = decodeURIComponent(new URL(import.meta.url).pathname.split("/").slice(-2)[0]);

const byNumberedName = (a, b) => a.localeCompare(b, "en", { numeric: true });

if (typeof api?.getWorkflowTemplates === "function" && !api.getWorkflowTemplates.gendrPixSorted) {
  const original = api.getWorkflowTemplates.bind(api);
  const sorted = async (...args) => {
    const templates = await original(...args);
    const ours = templates?.[PACK_FOLDER];
    if (Array.isArray(ours)) templates[PACK_FOLDER] = [...ours].sort(byNumberedName);
    return templates;
  };
  sorted.gendrPixSorted = true;
  api.getWorkflowTemplates = sorted;
}
