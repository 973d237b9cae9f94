"""scripts/template_thumbnails.py (the Browse Templates thumbnails) and the thumbnails it made."""

from __future__ import annotations

import importlib.util
import inspect
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nodes.model_value import PixModel

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / "example_workflows").glob("*.json"))


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("template_thumbnails", ROOT / "scripts" / "template_thumbnails.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_widget_names_are_the_frozen_ones(script, frozen_widgets):
    assert script.UPSCALE_WIDGETS == frozen_widgets["GenDRPixUpscale"]
    for node_type, apply in script.MODEL_SETTINGS.items():
        assert tuple(inspect.signature(apply).parameters)[1:] == frozen_widgets[node_type], node_type


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_reads_each_example_workflow(script, path, tiny):
    run = script.read_workflow(path)
    assert (path.parent / run.input_file).is_file()
    assert run.request.scale == 4
    model = PixModel(network=tiny)
    for node_type, widgets in run.model_nodes:  # valid settings: the node logic accepts them
        model = script.MODEL_SETTINGS[node_type](model, *widgets)


def test_paper_recipe_settings_come_from_its_json(script):
    run = script.read_workflow(next(p for p in WORKFLOWS if "Paper recipe" in p.stem))
    assert dict(run.model_nodes) == {"GenDRPixSelfEnsemble": (2,), "GenDRPixGuidance": (1.5, "padcfg")}
    assert run.request.color_fix == "wavelet"


def test_thumbnail_is_the_output_square_half_bicubic_half_result(script, tmp_path, tiny):
    source = next(p for p in WORKFLOWS if p.stem.startswith("GenDR-Pix 1"))
    workflow = Path(shutil.copy(source, tmp_path / source.name))
    run = script.read_workflow(workflow)
    small = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)  # a quick stand-in input
    Image.fromarray(small).save(tmp_path / run.input_file)
    image = script.read_input(tmp_path / run.input_file)
    result = script.upscale(tiny, run, image)
    thumb = script.before_after(image, result)
    h, w = result.shape[1:3]
    side = min(h, w)
    assert thumb.size == (side, side)
    pixels = np.asarray(thumb, dtype=np.float32) / 255
    top, left = (h - side) // 2, (w - side) // 2
    crop = result[0, top:top + side, left:left + side].numpy()
    # away from the divider and the labels, the right half is the result itself
    window = (slice(side // 8, side // 2), slice(side * 5 // 8, side * 7 // 8))
    assert np.abs(pixels[window] - crop[window]).mean() < 2 / 255
    assert script.make_thumbnail(workflow, tiny) == workflow.with_suffix(".jpg")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_committed_thumbnail_is_a_small_square_result(path):
    thumb = path.with_suffix(".jpg")
    with Image.open(thumb) as im:
        assert im.format == "JPEG" and im.width == im.height <= 512, im.size
    assert thumb.stat().st_size < 64 * 1024
