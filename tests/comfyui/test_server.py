"""Against a real ComfyUI (comfy_server.py): the pack through ComfyUI's HTTP API.

Skipped unless COMFYUI_DIR names a ComfyUI checkout. COMFYUI_PYTHON is the interpreter of its
environment (default: this one).

    COMFYUI_DIR=/path/to/ComfyUI COMFYUI_PYTHON=/path/to/venv/bin/python pytest tests/comfyui -v
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gendr_pix

from .comfy_server import COMFYUI_PYTHON, EXAMPLES, PACK_FOLDER, needs_comfyui
from .ui_to_api import ui_to_api

WS_EVENTS = Path(__file__).with_name("ws_events.py")

pytestmark = needs_comfyui

EXPECTED_OUTPUT = {  # workflow -> (width, height, frames) of what it saves
    "GenDR-Pix 1 - Basic x4 upscale": (448, 300, 1),
    "GenDR-Pix 2 - More detail with guidance": (600, 400, 1),
    "GenDR-Pix 3 - Paper recipe for the smoothest result": (600, 400, 1),
    "GenDR-Pix 4 - Video upscale": (384, 256, 8),
}


def test_only_this_pack_loaded_and_it_imported_cleanly(server, object_info):
    log = server.tail(1000)
    assert f"custom_nodes/{PACK_FOLDER}" in log
    assert not [line for line in log.splitlines() if "IMPORT FAILED" in line and PACK_FOLDER in line]
    modules = {info["python_module"] for info in object_info.values()}
    assert {m for m in modules if m.startswith("custom_nodes")} == {f"custom_nodes.{PACK_FOLDER}"}


def test_object_info_lists_our_nodes_with_frozen_inputs_and_tooltips(object_info, frozen_nodes):
    for node_id, order in frozen_nodes.items():
        info = object_info[node_id]
        assert tuple(info["input_order"].get("required", ())) == order["required"], node_id
        # ComfyUI may append inputs of its own after ours (0.9.2 here adds an optional "exec_in" pin).
        optional = tuple(info["input_order"].get("optional", ()))
        assert optional[:len(order["optional"])] == order["optional"], node_id
        inputs = {**info["input"]["required"], **info["input"].get("optional", {})}
        for name in (*order["required"], *order["optional"]):
            assert inputs[name][1].get("tooltip"), f"{node_id}.{name} has no tooltip"
        assert info["category"].startswith("image/upscaling")
    # First outputs are ours; 0.9.2 here appends an "EXECUTE" pin of its own.
    assert object_info["GenDRPixUpscale"]["output"][:1] == ["IMAGE"]
    assert object_info["GenDRPixModelLoader"]["output"][:1] == ["GENDR_PIX_MODEL"]
    assert object_info["GenDRPixCompare"]["output_node"] is True


def test_model_list_has_bundled_default_folder_files_and_extra_paths(object_info):
    options = object_info["GenDRPixModelLoader"]["input"]["required"]["model_name"][1]["options"]
    assert options[0].startswith("(bundled)")
    assert {"tiny.safetensors", "broken.safetensors", "tiny-extra.safetensors"} <= set(options)
    assert "readme.txt" not in options


def test_web_extension_and_help_pages_are_served(server):
    extensions = server.get("/extensions")
    assert f"/extensions/{PACK_FOLDER}/compare.js" in extensions
    with urllib.request.urlopen(f"{server.url}/extensions/{PACK_FOLDER}/docs/GenDRPixUpscale.md") as r:
        assert r.read().startswith(b"# GenDR-Pix Upscale")


def test_example_inputs_are_in_the_input_folder_before_any_copy_by_hand(server):
    """The server's base directory started without an input/ folder; the pack put the examples there."""
    shipped = sorted(EXAMPLES.glob("gendr_pix_example_*"))
    assert shipped
    for source in shipped:
        assert (server.base / "input" / source.name).read_bytes() == source.read_bytes()
    assert "GenDR-Pix: copied the example inputs" in server.tail(1000)


def test_templates_are_listed_and_their_files_and_thumbnails_served(server):
    assert sorted(server.get("/api/workflow_templates")[PACK_FOLDER]) == sorted(EXPECTED_OUTPUT)
    for name in EXPECTED_OUTPUT:
        for suffix in (".json", ".jpg"):  # the frontend fetches <name>.json to open, <name>.jpg to show
            url = f"{server.url}/api/workflow_templates/{PACK_FOLDER}/{urllib.parse.quote(name + suffix)}"
            with urllib.request.urlopen(url) as r:
                assert r.read() == (EXAMPLES / f"{name}{suffix}").read_bytes(), url


def _saved_files(entry: dict, base: Path, kind: str = "images") -> list[Path]:
    files = []
    for output in entry["outputs"].values():
        for item in output.get(kind, []):
            if item.get("type") == "output":
                files.append(base / "output" / item.get("subfolder", "") / item["filename"])
    return files


def _check_image(path: Path, size: tuple[int, int]) -> None:
    with Image.open(path) as im:
        assert im.size == size, f"{path.name}: {im.size} != {size}"
        pixels = np.asarray(im.convert("RGB"), dtype=np.float32)
    assert pixels.std() > 2.0, f"{path.name} is blank"


def _check_video(path: Path, size: tuple[int, int], frames: int) -> None:
    script = ("import av, sys, numpy as np\n"
              "c = av.open(sys.argv[1]); f = [x.to_ndarray(format='rgb24') for x in c.decode(video=0)]\n"
              "print(len(f), f[0].shape[1], f[0].shape[0], float(np.stack(f).std()))")
    out = subprocess.run([COMFYUI_PYTHON, "-c", script, str(path)], capture_output=True, text=True, check=True)
    count, width, height, std = out.stdout.split()
    assert (int(width), int(height)) == size and int(count) == frames and float(std) > 2.0, out.stdout


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUT))
def test_example_workflow_runs_and_saves_upscaled_images(server, object_info, name):
    workflow = json.loads((EXAMPLES / f"{name}.json").read_text())
    prompt = ui_to_api(workflow, object_info)  # as shipped: with the bundled default model
    assert any(node["inputs"].get("model_name", "").startswith("(bundled)") for node in prompt.values())
    entry = server.wait(server.submit(prompt))
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    width, height, frames = EXPECTED_OUTPUT[name]
    if frames == 1:
        saved = _saved_files(entry, server.base)
        assert len(saved) == 1
        _check_image(saved[0], (width, height))
        compare = next(o for o in entry["outputs"].values() if "gendr_pix_after" in o)
        after = compare["gendr_pix_after"][0]
        _check_image(server.base / "temp" / after["subfolder"] / after["filename"], (width, height))
    else:
        videos = _saved_files(entry, server.base, "images") or _saved_files(entry, server.base, "videos")
        assert len(videos) == 1 and videos[0].suffix == ".mp4", entry["outputs"]
        _check_video(videos[0], (width, height), frames)


def test_missing_bundled_model_is_a_clear_node_error_or_runs(server):
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": 0x808080}},
        "2": {"class_type": "GenDRPixModelLoader", "inputs": {"model_name": "(bundled) gendr-pix-small-x4.safetensors",
                                                             "precision": "auto"}},
        "3": {"class_type": "GenDRPixUpscale", "inputs": {"model": ["2", 0], "image": ["1", 0], "scale": 4.0,
                                                          "tile_size": 0, "tile_overlap": 64, "color_fix": "none"}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }
    entry = server.wait(server.submit(prompt))
    if gendr_pix.DEFAULT_MODEL.is_file():
        assert entry["status"]["status_str"] == "success"
    else:
        error = _execution_error(entry)
        assert error["node_type"] == "GenDRPixModelLoader" and "bundled default model" in error["exception_message"]


def _execution_error(entry: dict) -> dict:
    assert entry["status"]["status_str"] == "error", entry["status"]
    return next(data for kind, data in entry["status"]["messages"] if kind == "execution_error")


def _upscale_prompt(model: str, size: int, shifts: int = 1, tile: int = 0, grid_filter: int = 0) -> dict:
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": size, "height": size, "batch_size": 1,
                                                     "color": 0x4080C0}},
        "2": {"class_type": "GenDRPixModelLoader", "inputs": {"model_name": model, "precision": "fp32"}},
        "3": {"class_type": "GenDRPixSelfEnsemble", "inputs": {"model": ["2", 0], "shifts": shifts}},
        "4": {"class_type": "GenDRPixUpscale", "inputs": {"model": ["3", 0], "image": ["1", 0], "scale": 4.0,
                                                          "tile_size": tile, "tile_overlap": 32, "color_fix": "none"}},
        "5": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}},
    }
    if grid_filter:
        prompt["6"] = {"class_type": "GenDRPixGridFilter", "inputs": {"model": ["3", 0], "window": grid_filter}}
        prompt["4"]["inputs"]["model"] = ["6", 0]
    return prompt


def test_grid_filter_node_runs_in_a_graph_and_rejects_a_bad_window(server):
    entry = server.wait(server.submit(_upscale_prompt("tiny.safetensors", 40, shifts=2, grid_filter=32)))
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    saved = [Path(server.base, "temp", i["subfolder"], i["filename"]) for o in entry["outputs"].values()
             for i in o.get("images", [])]
    assert len(saved) == 1
    _check_image(saved[0], (160, 160))
    error = _execution_error(server.wait(server.submit(_upscale_prompt("tiny.safetensors", 40, grid_filter=20))))
    assert error["node_type"] == "GenDRPixGridFilter" and "multiple of 8" in error["exception_message"]


def test_bad_model_file_gives_a_node_error_and_the_server_keeps_serving(server):
    entry = server.wait(server.submit(_upscale_prompt("broken.safetensors", 32)))
    error = _execution_error(entry)
    assert error["node_type"] == "GenDRPixModelLoader"
    assert "broken.safetensors" in error["exception_message"]
    assert server.get("/system_stats")["system"]
    after = server.wait(server.submit(_upscale_prompt("tiny.safetensors", 32)))
    assert after["status"]["status_str"] == "success"


def test_interrupt_stops_a_long_run_promptly(server):
    prompt_id = server.submit(_upscale_prompt("tiny-extra.safetensors", 512, shifts=8, tile=128))
    end = time.monotonic() + 60
    while not any(item[1] == prompt_id for item in server.get("/queue")["queue_running"]):
        assert time.monotonic() < end, "the long run never started"
        time.sleep(0.2)
    time.sleep(3.0)  # well inside the upscale: 512 px x4 with 8 shifts on 128 px tiles takes minutes
    interrupted_at = time.monotonic()
    server.post("/interrupt", {})
    entry = server.wait(prompt_id, timeout=120)
    stopped_after = time.monotonic() - interrupted_at
    kinds = [kind for kind, _ in entry["status"]["messages"]]
    assert "execution_interrupted" in kinds, kinds
    assert stopped_after < 20, f"took {stopped_after:.1f}s to stop"
    assert server.get("/queue")["queue_running"] == []


def test_an_untiled_run_moves_its_progress_bar_and_stops_inside_its_model_pass(server):
    """tile_size 0: 1024 px x4 with the tiny model is one whole-image pass (its attention alone sees 65k
    tokens; minutes on this CPU). The bar moves block by block, and Cancel stops the pass, not after it."""
    per_pass = gendr_pix.load_model(server.base / "models" / "gendr_pix" / "tiny.safetensors").unet.steps_per_pass
    watcher = subprocess.Popen([COMFYUI_PYTHON, str(WS_EVENTS), server.url, "gendr-pix-tests", "600"],
                               stdout=subprocess.PIPE, text=True)
    try:
        events = _Events(watcher)
        assert events.next()["type"] == "connected"
        prompt_id = server.submit(_upscale_prompt("tiny-extra.safetensors", 1024))
        moving = events.until(lambda e: e["type"] == "progress" and e["data"]["node"] == "4"
                              and 2 <= e["data"]["value"] < e["data"]["max"], timeout=300)
        assert moving["data"]["max"] == per_pass  # one pass: the whole image, untiled
        interrupted_at = time.time()
        server.post("/interrupt", {})
        stopped = events.until(lambda e: e["type"] in ("execution_interrupted", "execution_success",
                                                       "execution_error"), timeout=120)
    finally:
        watcher.kill()
    assert stopped["type"] == "execution_interrupted", stopped
    upscale_steps = [e["data"]["value"] for e in events.seen if e["type"] == "progress" and e["data"]["node"] == "4"]
    assert max(upscale_steps) < per_pass  # the pass did not finish
    # About 1 s on an idle 2-core CPU; training and other jobs share this one (a block then takes 10-30 s).
    assert stopped["t"] - interrupted_at < 60, f"took {stopped['t'] - interrupted_at:.1f}s to stop"
    assert server.wait(prompt_id, timeout=60)["status"]["status_str"] == "error"


class _Events:
    """The JSON lines ws_events.py prints, read as they come."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process, self.seen = process, []

    def next(self) -> dict:
        line = self.process.stdout.readline()
        assert line, "the websocket watcher ended"
        self.seen.append(json.loads(line))
        return self.seen[-1]

    def until(self, wanted, timeout: float) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            event = self.next()
            if wanted(event):
                return event
        raise AssertionError(f"no such event in {timeout}s; last: {self.seen[-3:]}")


def test_loader_is_cached_between_runs_and_reloads_a_replaced_file(server):
    """The file is read once for repeated runs (ComfyUI's output cache or, where a ComfyUI re-runs every
    node, the pack's own model cache) and read again once it is replaced on disk."""
    path = server.base / "models" / "gendr_pix" / "tiny.safetensors"

    def loads() -> int:
        return server.log.read_text(errors="replace").count(f"GenDR-Pix: loading {path} ")

    prompt = _upscale_prompt("tiny.safetensors", 24)
    prompt["1"]["inputs"]["color"] = 0x102030  # a prompt no earlier test ran
    before = loads()
    for _ in range(2):
        assert server.wait(server.submit(prompt))["status"]["status_str"] == "success"
    assert loads() - before <= 1
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2 * 10**9))  # the file was replaced
    reloaded = loads()
    assert server.wait(server.submit(prompt))["status"]["status_str"] == "success"
    assert loads() == reloaded + 1
