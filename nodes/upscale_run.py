"""The logic behind the Upscale node, without ComfyUI: memory planning, progress relay, one core call.

ComfyUI hands in what only it knows (free memory, a progress sink, an interrupt check); this module
turns a node's inputs into `gendr_pix.UpscaleOptions` and calls `gendr_pix.upscale(layout="NHWC")`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

import gendr_pix

from .model_value import PixModel

log = logging.getLogger(__name__)

COLOR_FIXES: tuple[str, ...] = gendr_pix.COLOR_FIXES

PreviewSink = Callable[[int, int, Image.Image | None], None]


@dataclass(frozen=True, kw_only=True)
class UpscaleRequest:
    """The Upscale node's widgets (tooltips in nodes/image_nodes.py)."""

    scale: float = 4.0
    tile_size: int = 0
    """Tile edge in output pixels; 0 = automatic (the core plans it from free memory)."""
    tile_overlap: int = 64
    color_fix: str = "none"


WIDGET_NAMES: dict[str, str] = {
    # The core's setting names (gendr_pix.SettingError placeholders) as this node pack shows them.
    "tile": "tile_size",
    "ensemble": "shifts (GenDR-Pix Self-ensemble)",
    "grid_filter": "window (GenDR-Pix Grid Filter)",
    "antiring": "strength (GenDR-Pix Anti-ringing)",
    "fp32": "precision fp32 on the GenDR-Pix Model Loader",
}


@contextmanager
def named_as_widgets() -> Iterator[None]:
    """Core setting errors name the node's widgets (`tile_size`, not the core's `tile`)."""
    try:
        yield
    except gendr_pix.SettingError as e:
        raise e.named(WIDGET_NAMES) from None


def options_for(model: PixModel, request: UpscaleRequest) -> gendr_pix.UpscaleOptions:
    """The node's model settings and widgets as core options (validated there). Tiles and frames per
    call stay automatic unless a tile size is set: the core plans them from free memory."""
    with named_as_widgets():
        return gendr_pix.UpscaleOptions(
            scale=float(request.scale), ensemble=model.ensemble, guidance=model.guidance,
            grid_filter=model.grid_filter, antiring=model.antiring, tile=request.tile_size,
            tile_overlap=request.tile_overlap, color_fix=request.color_fix,
        )


def memory_required(model: PixModel, images: Tensor, request: UpscaleRequest) -> int:
    """Bytes one frame (or tile) needs on the device besides the weights: what ComfyUI should free first."""
    h, w = as_rgb_or_rgba(images).shape[1:3]
    return gendr_pix.estimate_memory(model.network, h, w, options_for(model, request))


def check_output_fits(shape: tuple[int, ...], available_ram: int | None) -> None:
    """Refuse before allocating an output that cannot fit in RAM (a clear error beats the OOM killer)."""
    need = math.prod(shape) * 4
    if available_ram is not None and need > available_ram:
        b, h, w, c = shape
        raise MemoryError(
            f"The upscaled batch ({b} frames of {w}x{h}x{c}, float32) needs {need / 1e9:.1f} GB of RAM but only "
            f"{available_ram / 1e9:.1f} GB is available. Upscale fewer frames per run (split the batch) "
            "or use a smaller scale."
        )


FINAL_PREVIEW_SIZE = 2048
"""Longest side up to which the finished image is previewed at its own size. The frontend labels a
preview with its pixel size, so the label then reads the output's size (all example workflows); a
larger output is previewed at `preview_size`, like ComfyUI's own previews."""


class ProgressRelay:
    """Adapts the core's progress(done, total, piece) to a sink taking a small PIL preview.

    Previews are made at most every `min_interval` seconds (and for the last piece): each one is a
    JPEG sent to the browser, so one per tile would slow many-tile runs. Steps without a preview (one
    per UNet block) go out at most every `step_interval` seconds: small images on a GPU run hundreds of
    blocks a second, and each update is a websocket message (ComfyUI 0.3.x does not throttle them).
    """

    def __init__(self, sink: PreviewSink, preview_size: int = 512, min_interval: float = 0.5,
                 step_interval: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self.sink, self.preview_size, self.clock = sink, preview_size, clock
        self.min_interval, self.step_interval = min_interval, step_interval
        self._last_preview: float | None = None
        self._last_step: float | None = None

    def __call__(self, done: int, total: int, piece: Tensor | None) -> None:
        now = self.clock()
        last = done >= total
        preview = None
        if piece is not None and (last or _elapsed(self._last_preview, now, self.min_interval)):
            preview = to_preview(piece, self.preview_size)
            self._last_preview = now
        if preview is None and not last and not _elapsed(self._last_step, now, self.step_interval):
            return
        self._last_step = now
        self.sink(done, total, preview)

    def finish(self, images: Tensor) -> None:
        """Show the first finished image, whole (the last piece may be a tile) and, up to
        FINAL_PREVIEW_SIZE, at its own size: the frontend's label then reads the output's size."""
        h, w = images.shape[1:3]
        size = max(h, w) if max(h, w) <= FINAL_PREVIEW_SIZE else self.preview_size
        self.sink(1, 1, to_preview(images[:1, ..., :3].permute(0, 3, 1, 2), size))


def _elapsed(since: float | None, now: float, interval: float) -> bool:
    return since is None or now - since >= interval


def to_preview(piece: Tensor, max_size: int) -> Image.Image:
    """First image of a [B, 3, h, w] piece in [0, 1] -> RGB PIL image no larger than max_size."""
    x = piece[:1, :3].detach().float()
    h, w = x.shape[-2:]
    factor = max_size / max(h, w)
    if factor < 1:
        x = F.interpolate(x, size=(max(1, round(h * factor)), max(1, round(w * factor))), mode="area")
    array = (x[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


def upscale_images(
    model: PixModel,
    images: Tensor,
    request: UpscaleRequest,
    *,
    progress: gendr_pix.ProgressFn | None = None,
    should_stop: gendr_pix.StopFn | None = None,
    available_ram: int | None = None,
) -> Tensor:
    """ComfyUI IMAGE [B, H, W, C] in [0, 1] (C = 1, 3 or 4) -> upscaled IMAGE, float32 on the CPU.

    Grey images (C = 1) are upscaled as RGB. Runs where the network is (ComfyUI placed it).
    Raises ValueError for bad inputs, MemoryError when the output cannot fit in RAM.
    """
    images = as_rgb_or_rgba(images)
    options = options_for(model, request)
    b, h, w, c = images.shape
    oh, ow = gendr_pix.output_size(h, w, options.scale)
    check_output_fits((b, oh, ow, c), available_ram)
    with named_as_widgets():
        return gendr_pix.upscale(model.network, images, options, layout="NHWC", positive=model.positive,
                                 negative=model.negative, progress=progress, should_stop=should_stop)


def as_rgb_or_rgba(images: Tensor) -> Tensor:
    """Check a ComfyUI IMAGE; grey (1 channel) becomes RGB. Channel counts other than 1, 3, 4 and
    non-float tensors are left for the core to reject with its own message."""
    if not isinstance(images, Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"image must be a ComfyUI IMAGE [batch, height, width, channels], got {shape}")
    return images.expand(-1, -1, -1, 3) if images.shape[-1] == 1 else images
