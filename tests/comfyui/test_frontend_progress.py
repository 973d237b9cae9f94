"""From ComfyUI's own page in Chromium (cancel_check.cjs): an untiled Upscale moves the node's progress
bar during its one model pass, the page's Interrupt command (the Cancel button) stops it inside the
pass, and the node's preview label reads the output's size. Skipped like test_frontend.py."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import gendr_pix

from .test_frontend import CHROMIUM, NODE, PLAYWRIGHT_CORE, pytestmark  # noqa: F401 (same skips)

SCRIPT = Path(__file__).with_name("cancel_check.cjs")
SIZE = 1024  # x4 with the tiny model: one whole-image pass of minutes here (its attention sees 65k tokens)
STOP_LIMIT_S = 60  # about 1 s on an idle 2-core CPU; this machine runs training and other jobs beside


@pytest.fixture(scope="module")
def report(server) -> dict:
    env = {**os.environ, "PLAYWRIGHT_CORE": PLAYWRIGHT_CORE, "CHROMIUM": CHROMIUM}
    done = subprocess.run([NODE, str(SCRIPT), server.url, "tiny.safetensors", str(SIZE), "3"],
                          capture_output=True, text=True, env=env, timeout=1800)
    assert done.returncode == 0, f"{done.stderr[-3000:]}\n{server.tail()}"
    return json.loads(done.stdout.splitlines()[-1])


def test_the_progress_bar_moves_during_one_untiled_pass_and_cancel_stops_it(report, server):
    per_pass = gendr_pix.load_model(server.base / "models" / "gendr_pix" / "tiny.safetensors").unet.steps_per_pass
    run = report["cancel"]
    assert {e["max"] for e in run["events"]} == {per_pass}  # one pass: the whole image
    drawn = sorted({b["progress"] for b in run["bar"] if b["progress"] and b["t"] <= run["cancelAt"]})
    assert len(drawn) >= 2 and drawn[-1] < 1, run["bar"]  # the green bar moved, inside the pass
    assert run["end"]["kind"] == "execution_interrupted", run
    assert max(e["value"] for e in run["events"]) < per_pass  # stopped before the pass ended
    assert run["stopMs"] < STOP_LIMIT_S * 1000, f"took {run['stopMs'] / 1000:.1f}s to stop"


def test_the_preview_label_reads_the_output_size(report):
    run = report["label"]
    assert run["end"]["kind"] == "execution_success", run
    assert run["images"] == [[448, 300]]  # 112x75 x4; ComfyUI used to enlarge the preview to 512x343
