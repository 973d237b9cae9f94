"""The visual panel: 1:1 crops of held-out photos, each restored by every method side by side.

Metrics average; artifacts are local. The panel shows what a user sees at 1:1 on the kinds of content
a small model gets wrong (a face, fine machinery, fur, foliage, text, flat sky and walls), for clean
(bicubic) and noisy/JPEG (the real-world pipeline of `degrade.py`) inputs, with the columns
input (nearest) | bicubic | ours, default settings | ours, recommended settings | Real-ESRGAN x4plus
(when cached) | ground truth.

Each crop is degraded from a region around it (`CONTEXT` px of margin, so the model sees context and
the crop has no border effects), seeded by its place in the list, so every run and method sees the
same inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from gendr_pix import GenDRPix, Guidance, UpscaleOptions, resize, upscale

from .data import load_rgb
from .degrade import DegradeConfig, degrade
from .references import NcnnUpscaler, available

log = logging.getLogger(__name__)

SCALE = 4
CONTEXT = 64
"""Margin (HR px) around each crop that is degraded and restored with it, then cut away."""
SETTINGS = {"clean": "bicubic", "noisy/JPEG": "realesrgan"}


@dataclass(frozen=True)
class Crop:
    photo: str
    """File stem in the photo folder."""
    x: int
    y: int
    """Top-left corner in the photo (HR px)."""
    what: str
    """What the crop shows (a row label)."""


CROPS = (
    Crop("astronaut", 196, 76, "face"),
    Crop("motorcycle_left", 340, 236, "machinery"),
    Crop("baboon", 28, 328, "fur"),
    Crop("plant", 288, 20, "foliage"),
    Crop("scenetext01", 268, 88, "text"),
    Crop("building", 128, 140, "sky, wall"),
)
"""The default crops, in `fetch-data`'s panel photos (`data/photos/panel`)."""

Upscaler = Callable[[Tensor], Tensor]

RECOMMENDED = UpscaleOptions(guidance=Guidance(scale=1.25))
"""The README's recommendation beyond the defaults (the panel's 'recommended' column): guidance 1.25,
the best LPIPS of the settings measured on the held-out photos, at two passes (docs/QUALITY.md)."""


def columns(model: GenDRPix, default: UpscaleOptions, recommended: UpscaleOptions,
            references: bool = True) -> dict[str, Upscaler | None]:
    """Column label -> upscaler of [1, 3, h, w] in [0, 1]; None marks the input and ground-truth columns."""
    cols: dict[str, Upscaler | None] = {
        "input (nearest)": None,
        "bicubic": lambda lq: resize(lq, (lq.shape[-2] * SCALE, lq.shape[-1] * SCALE)).clamp(0, 1),
        "ours, default": lambda lq: upscale(model, lq, default),
        "ours, recommended": lambda lq: upscale(model, lq, recommended),
    }
    if references:
        found = available()
        if "Real-ESRGAN x4plus" in found:
            cols["Real-ESRGAN x4plus"] = NcnnUpscaler(found["Real-ESRGAN x4plus"], 2)
        else:
            log.warning("Real-ESRGAN x4plus is not cached (`python -m gendr_pix fetch-weights`): column left out")
    cols["ground truth"] = None
    return cols


def find_photo(folder: Path, stem: str) -> Path:
    matches = sorted(p for p in folder.glob(f"{stem}.*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not matches:
        raise FileNotFoundError(f"{folder}: no photo named {stem!r} (run `python -m gendr_pix fetch-data`)")
    return matches[0]


def crop_cells(hr: Tensor, crop: Crop, size: int, setting: str, seed: int,
               cols: dict[str, Upscaler | None]) -> list[Tensor]:
    """One panel row: [3, size, size] in [0, 1] per column."""
    _, h, w = hr.shape
    if crop.x + size > w or crop.y + size > h:
        raise ValueError(f"{crop.photo}: a {size}-px crop at ({crop.x}, {crop.y}) leaves the {w}x{h} photo")
    # The region around the crop, in whole input pixels.
    x0, y0 = max(0, crop.x - CONTEXT) // SCALE * SCALE, max(0, crop.y - CONTEXT) // SCALE * SCALE
    x1, y1 = min(w, crop.x + size + CONTEXT) // SCALE * SCALE, min(h, crop.y + size + CONTEXT) // SCALE * SCALE
    region = hr[:, y0:y1, x0:x1].contiguous()
    lq = degrade(region, DegradeConfig(kind=setting, scale=SCALE), np.random.default_rng(seed))[None]
    oy, ox = crop.y - y0, crop.x - x0
    cells = []
    for label, fn in cols.items():
        if label == "ground truth":
            out = region[None]
        elif fn is None:
            out = torch.nn.functional.interpolate(lq, scale_factor=SCALE, mode="nearest")
        else:
            with torch.inference_mode():
                out = fn(lq)
        cells.append(out[0, :3, oy:oy + size, ox:ox + size].clamp(0, 1))
    return cells


def make_panel(model: GenDRPix, folder: str | Path, *, default: UpscaleOptions, recommended: UpscaleOptions,
               crops: tuple[Crop, ...] = CROPS, size: int = 128, settings: tuple[str, ...] = tuple(SETTINGS),
               references: bool = True) -> Image.Image:
    """The panel as one image: a row per crop and input setting, a column per method, labelled."""
    cols = columns(model, default, recommended, references)
    rows = []
    for index, crop in enumerate(crops):
        hr = load_rgb(find_photo(Path(folder), crop.photo))
        for name in settings:
            seed = CROPS.index(crop) if crop in CROPS else index  # a crop's noisy input is the same in any subset
            cells = crop_cells(hr, crop, size, SETTINGS[name], seed=seed, cols=cols)
            rows.append((f"{crop.what}, {name}", cells))
        log.info("panel: %s done", crop.photo)
    return _draw(list(cols), rows, size)


def _draw(labels: list[str], rows: list[tuple[str, list[Tensor]]], size: int) -> Image.Image:
    gap, head, side = 2, 16, 92
    canvas = Image.new("RGB", (side + len(labels) * (size + gap), head + len(rows) * (size + gap)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, label in enumerate(labels):
        draw.text((side + i * (size + gap) + 2, 2), label, fill="black")
    for r, (label, cells) in enumerate(rows):
        top = head + r * (size + gap)
        draw.text((2, top + size // 2 - 6), label, fill="black")
        for i, cell in enumerate(cells):
            arr = (cell.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            canvas.paste(Image.fromarray(arr), (side + i * (size + gap), top))
    return canvas
