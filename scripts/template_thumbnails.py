"""Make the Browse Templates thumbnails: each example workflow's own input, upscaled with the bundled
model and that workflow's settings (read from its JSON), shown as a square crop, left half bicubic and
right half GenDR-Pix, at the output's own resolution (no resampling of either half).

    PYTHONPATH=. python scripts/template_thumbnails.py                 # every workflow in example_workflows/
    PYTHONPATH=. python scripts/template_thumbnails.py "example_workflows/GenDR-Pix 1 - Basic x4 upscale.json"

ComfyUI's template browser shows `<workflow name>.jpg` beside the workflow. The video workflow's first
frame is read with PyAV (`pip install av`; ComfyUI's own environment has it). CPU, deterministic.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

import gendr_pix
from nodes.model_value import (
    BUNDLED_CHOICE,
    PixModel,
    with_antiring,
    with_ensemble,
    with_grid_filter,
    with_guidance,
)
from nodes.upscale_run import UpscaleRequest, upscale_images

EXAMPLES = Path(__file__).resolve().parent.parent / "example_workflows"
JPEG_QUALITY = 85
MODEL_SETTINGS = {  # node type -> how its widgets (in their frozen order) change the model it passes on
    "GenDRPixSelfEnsemble": lambda model, shifts: with_ensemble(model, shifts),
    "GenDRPixGuidance": lambda model, scale, mode: with_guidance(model, scale, mode),
    "GenDRPixGridFilter": lambda model, window: with_grid_filter(model, window),
    "GenDRPixAntiRinging": lambda model, strength: with_antiring(model, strength),
}
UPSCALE_WIDGETS = ("scale", "tile_size", "tile_overlap", "color_fix")
INPUT_NODES = ("LoadImage", "LoadVideo")
ACTIVE = 0  # litegraph node mode; 2 = muted, 4 = bypassed


@dataclass(frozen=True)
class WorkflowRun:
    """What one example workflow does to its input, as far as the thumbnail needs it."""

    input_file: str
    model_nodes: tuple[tuple[str, tuple], ...]
    request: UpscaleRequest


def read_workflow(path: Path) -> WorkflowRun:
    """The input file, the model-side nodes with their widget values, and the Upscale node's widgets.
    Raises ValueError for a workflow this script cannot reproduce (no bundled model, several upscales)."""
    nodes = [n for n in json.loads(path.read_text())["nodes"] if n.get("mode", ACTIVE) == ACTIVE]
    by_type = lambda *types: [n for n in nodes if n["type"] in types]
    inputs, loaders, upscales = by_type(*INPUT_NODES), by_type("GenDRPixModelLoader"), by_type("GenDRPixUpscale")
    if len(inputs) != 1 or len(upscales) != 1 or len(loaders) != 1:
        raise ValueError(f"{path.name}: needs one input node, one model loader and one Upscale node")
    if loaders[0]["widgets_values"][0] != BUNDLED_CHOICE:
        raise ValueError(f"{path.name}: the thumbnail is made with the bundled model; the loader picks another")
    model_nodes = tuple((n["type"], tuple(n["widgets_values"])) for n in by_type(*MODEL_SETTINGS))
    request = UpscaleRequest(**dict(zip(UPSCALE_WIDGETS, upscales[0]["widgets_values"], strict=True)))
    return WorkflowRun(inputs[0]["widgets_values"][0], model_nodes, request)


def read_input(path: Path) -> torch.Tensor:
    """An image, or a video's first frame, as a ComfyUI IMAGE [1, H, W, 3] in [0, 1]."""
    if path.suffix.lower() in (".mp4", ".webm", ".mov", ".mkv"):
        import av  # only the video example needs it

        with av.open(str(path)) as container:
            array = next(container.decode(video=0)).to_ndarray(format="rgb24")
    else:
        with Image.open(path) as im:
            array = np.asarray(im.convert("RGB"))
    return torch.from_numpy(array.astype(np.float32) / 255.0)[None]


def upscale(network: gendr_pix.GenDRPix, run: WorkflowRun, image: torch.Tensor) -> torch.Tensor:
    """The workflow's result for `image`: its model nodes applied, then its Upscale widgets."""
    model = PixModel(network=network, source="bundled")
    for node_type, widgets in run.model_nodes:
        model = MODEL_SETTINGS[node_type](model, *widgets)
    return upscale_images(model, image, run.request)


def before_after(image: torch.Tensor, result: torch.Tensor) -> Image.Image:
    """Centre square of the output size: bicubic of `image` on the left, `result` on the right."""
    h, w = result.shape[1:3]
    bicubic = gendr_pix.resize(image.permute(0, 3, 1, 2), (h, w)).clamp(0, 1).permute(0, 2, 3, 1)
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = torch.cat([bicubic[0, top:top + side, left:left + side // 2],
                        result[0, top:top + side, left + side // 2:left + side]], dim=1)
    canvas = Image.fromarray((square.clamp(0, 1) * 255).round().to(torch.uint8).numpy())
    _label(canvas, side)
    return canvas


def _label(canvas: Image.Image, side: int) -> None:
    draw = ImageDraw.Draw(canvas, "RGBA")
    draw.line([(side // 2, 0), (side // 2, side)], fill=(255, 255, 255, 230), width=2)
    font = ImageFont.load_default(size=max(12, side // 18))  # bundled with Pillow: same on every machine
    pad = max(3, side // 60)
    for text, right in (("bicubic", False), ("GenDR-Pix", True)):
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        width, height = x1 - x0, y1 - y0
        x = side - width - 3 * pad if right else 3 * pad
        y = side - height - 3 * pad
        draw.rounded_rectangle([x - pad, y - pad, x + width + pad, y + height + pad], radius=pad, fill=(0, 0, 0, 150))
        draw.text((x - x0, y - y0), text, font=font, fill=(255, 255, 255, 255))


def make_thumbnail(workflow: Path, network: gendr_pix.GenDRPix) -> Path:
    run = read_workflow(workflow)
    image = read_input(workflow.parent / run.input_file)
    with torch.inference_mode():
        result = upscale(network, run, image)
    target = workflow.with_suffix(".jpg")
    before_after(image, result).save(target, quality=JPEG_QUALITY, optimize=True, progressive=True)
    return target


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workflows", nargs="*", type=Path, help="workflow JSON files (default: all examples)")
    a = p.parse_args()
    torch.manual_seed(0)
    network = gendr_pix.load_default_model()
    for workflow in a.workflows or sorted(EXAMPLES.glob("*.json")):
        target = make_thumbnail(workflow, network)
        with Image.open(target) as im:
            print(f"{target.name}: {im.width}x{im.height}, {target.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
