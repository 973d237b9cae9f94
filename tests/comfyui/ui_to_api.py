"""Convert a saved UI (litegraph) workflow to ComfyUI's API prompt format, using /object_info.

Enough for our example workflows: linked inputs, widgets in input order (skipping the extra values
the frontend stores after seed-like widgets and upload buttons), frontend-only nodes (Note) and
muted/bypassed nodes left out.
"""

from __future__ import annotations

from typing import Any

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "file_upload")
INACTIVE_MODES = {2, 4}  # muted, bypassed


def _is_widget(io_type: Any, options: dict) -> bool:
    if options.get("forceInput"):
        return False
    return isinstance(io_type, list) or io_type in WIDGET_TYPES


def ui_to_api(workflow: dict, object_info: dict) -> dict[str, dict]:
    links = {link[0]: link for link in workflow["links"]}
    prompt: dict[str, dict] = {}
    for node in workflow["nodes"]:
        info = object_info.get(node["type"])
        if info is None or node.get("mode", 0) in INACTIVE_MODES:
            continue
        inputs: dict[str, Any] = {}
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                _, src, src_slot, *_ = links[slot["link"]]
                inputs[slot["name"]] = [str(src), src_slot]
        spec = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
        order = info["input_order"].get("required", []) + info["input_order"].get("optional", [])
        values = list(node.get("widgets_values") or [])
        i = 0
        for name in order:
            io_type, options = spec[name][0], (spec[name][1] if len(spec[name]) > 1 else {})
            if not _is_widget(io_type, options) or i >= len(values):
                continue
            value = values[i]
            i += 1
            if options.get("control_after_generate"):
                i += 1
            if any(options.get(flag) for flag in UPLOAD_FLAGS):
                i += 1
            inputs.setdefault(name, value)
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt
