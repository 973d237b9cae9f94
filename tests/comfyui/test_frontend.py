"""Against a real ComfyUI's own frontend in Chromium (frontend_check.cjs): the node types and the
web/ extensions register; Browse Templates lists the pack's templates in order, with their titles and
thumbnails; each template opened from there runs from the page with no input copied by hand (the
server's base directory is fresh); every example workflow loads with no missing node and its saved
widget values; and the Compare slider shows both images after a run started from the page.

Skipped unless COMFYUI_DIR is set (see comfy_server.py), `node` is on PATH, and PLAYWRIGHT_CORE names an
npm-installed playwright-core folder; CHROMIUM names the browser (default: chromium on PATH):

    npm install --prefix /tmp/pw playwright-core
    COMFYUI_DIR=... COMFYUI_PYTHON=... PLAYWRIGHT_CORE=/tmp/pw/node_modules/playwright-core \\
        python -m pytest tests/comfyui/test_frontend.py -v
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from .comfy_server import EXAMPLES, PACK_FOLDER, needs_comfyui

NODE = shutil.which("node")
PLAYWRIGHT_CORE = os.environ.get("PLAYWRIGHT_CORE")
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
SCRIPT = Path(__file__).with_name("frontend_check.cjs")
WORKFLOWS = sorted(p.stem for p in EXAMPLES.glob("*.json"))  # "GenDR-Pix 1 - ...": basic first
RUN_WORKFLOW = WORKFLOWS[0]
RUN_SIZES = {"before": (112, 75), "after": (448, 300)}  # that workflow's input and its x4 upscale

pytestmark = [
    needs_comfyui,
    pytest.mark.skipif(not (NODE and PLAYWRIGHT_CORE and CHROMIUM),
                       reason="needs node, PLAYWRIGHT_CORE (an npm playwright-core folder) and chromium"),
]


@pytest.fixture(scope="module")
def report(server) -> dict:
    env = {**os.environ, "PLAYWRIGHT_CORE": PLAYWRIGHT_CORE, "CHROMIUM": CHROMIUM}
    done = subprocess.run([NODE, str(SCRIPT), server.url, str(EXAMPLES), PACK_FOLDER],
                          capture_output=True, text=True, env=env, timeout=2400)  # 4 runs
    assert done.returncode == 0, f"{done.stderr[-3000:]}\n{server.tail()}"
    return json.loads(done.stdout.splitlines()[-1])


def test_nodes_extension_and_templates_register_in_the_frontend(report, frozen_nodes):
    assert report["nodeTypes"] == sorted(frozen_nodes)
    assert sorted(report["extensions"]) == ["GenDRPix.Compare", "GenDRPix.LoaderWarning"]
    assert sorted(report["templates"][PACK_FOLDER]) == WORKFLOWS  # what /api/workflow_templates lists
    ours = [line for line in report["console"] if "gendr" in line.lower()]
    assert not ours, ours


def test_templates_are_listed_basic_first_with_titles_and_result_thumbnails(report):
    cards = report["cards"]  # Browse Templates -> the pack's category, in the order shown
    assert [card["name"] for card in cards] == WORKFLOWS
    assert [card["title"] for card in cards] == WORKFLOWS  # these frontends title a pack's template by its file
    for card in cards:
        with Image.open(EXAMPLES / f"{card['name']}.jpg") as thumbnail:
            assert card["thumbnails"] == [list(thumbnail.size)], card  # ours, served and shown


@pytest.mark.parametrize("name", WORKFLOWS)
def test_template_runs_right_after_it_is_opened(report, name):
    opened = report["opened"][name]
    saved = json.loads((EXAMPLES / f"{name}.json").read_text())
    assert opened["nodes"] == sorted(f"{n['id']}:{n['type']}" for n in saved["nodes"])
    assert opened["run"]["status"] == "success", opened["run"]


@pytest.mark.parametrize("name", WORKFLOWS)
def test_example_workflow_loads_as_saved_and_makes_a_vae_free_prompt(report, name):
    loaded = report["workflows"][name]
    assert loaded["nodes"] > 0
    assert loaded["missing"] == [] and loaded["badCombo"] == []
    assert loaded["widgetMismatch"] == []  # widget order is frozen: values land where they were saved
    assert not [t for t in loaded["classTypes"] if "VAE" in t]
    assert any(t.startswith("GenDRPix") for t in loaded["classTypes"])
    # the slider is a DOM view with no value: it must not reach the API prompt
    assert all(inputs == ["after", "before"] for inputs in loaded["compareInputs"])
    assert all(loaded["compareViews"])


def test_compare_slider_shows_both_images_after_a_run_from_the_page(report):
    run = report["opened"][RUN_WORKFLOW]["run"]
    assert run["status"] == "success", run
    [images] = run["compare"]
    by_side = {image["alt"]: image for image in images}
    assert set(by_side) == {"before", "after"}
    assert all(image["shown"] and image["loaded"] for image in images), images
    assert {side: (image["width"], image["height"]) for side, image in by_side.items()} == RUN_SIZES
