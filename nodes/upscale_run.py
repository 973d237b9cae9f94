"""The logic behind the Upscale node, without ComfyUI: memory planning, progress relay, one core call.

ComfyUI hands in what only it knows (free memory, a progress sink, an interrupt check); this module
turns a node's inputs into `gendr_pix.UpscaleOptions` and calls `gendr_pix.upscale(layout="NHWC")`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

import gendr_pix

from .model_value import PixModel

log = logging.getLogger(__name__)

COLOR_FIXES: tuple[str, ...] = gendr_pix.COLOR_FIXES
MAX_FRAMES_PER_CALL = 8
"""Upper bound on frames per model call when whole frames fit in memory (more gains little)."""
MEMORY_SAFETY = 1.5
"""Factor on the activation estimate below: allocator fragmentation and transient copies."""
MEMORY_FRACTION = 0.75
"""Share of the free memory the automatic plan may use. Measured on the CPU (peak RSS growth of one
upscale vs the planned bytes): small preset 1024 px 172 MB vs 294 MB planned, 2048 px 531 vs 1176 MB;
sd21 preset 512 px 194 vs 213 MB. The plan is the larger in each, so 3/4 of free memory is safe."""
MIN_AUTO_TILE = 128
"""Smallest tile the automatic choice picks (the core's own out-of-memory floor)."""
IMAGE_BYTES_PER_PIXEL = 160
"""Float32 full-size tensors per output pixel besides the UNet (resized input, [-1, 1] copy, padded
copy, output, ensemble/guidance accumulators, colour-fix reference): about 10 of 4 channels x 4 bytes."""

PreviewSink = Callable[[int, int, Image.Image | None], None]


@dataclass(frozen=True, kw_only=True)
class UpscaleRequest:
    """The Upscale node's widgets (tooltips in nodes/image_nodes.py)."""

    scale: float = 4.0
    tile_size: int = 0
    """Tile edge in output pixels; 0 = automatic (whole image when it fits in free memory)."""
    tile_overlap: int = 64
    color_fix: str = "none"


@dataclass(frozen=True)
class Plan:
    """How one Upscale call runs: tile edge in output pixels (0 = whole frames), frames per model call."""

    tile: int
    frames_per_call: int


def unet_bytes_per_pixel(config: gendr_pix.ModelConfig, dtype: torch.dtype) -> float:
    """Peak UNet activation bytes per output pixel for one model call (an estimate).

    Level l works on a grid 8 * 2^l times smaller per side than the image, i.e. 64 * 4^l pixels per
    cell, with width c_l. Live per cell: the skip tensors kept for the way up (layers + 1), the
    concatenated input of an up block (2 c), and the residual block's norm/activation/conv
    temporaries (about 3 c): about (2 * layers + 8) * c_l values. Attention uses
    scaled_dot_product_attention, whose fused kernels stay linear in the token count.
    """
    unet = config.unet
    per_cell = sum((2 * unet.layers_per_block + 8) * c / 4**level for level, c in enumerate(unet.block_channels))
    return per_cell / 64 * torch.finfo(dtype).bits / 8


def bytes_per_output_pixel(model: PixModel) -> float:
    """Estimated peak bytes per output pixel of one model call, image tensors included."""
    net = model.network
    return MEMORY_SAFETY * unet_bytes_per_pixel(net.config, net.dtype) + IMAGE_BYTES_PER_PIXEL


def frame_bytes(model: PixModel, images: Tensor, request: UpscaleRequest) -> int:
    """Estimated memory to run one frame (or one tile of it): what ComfyUI should free first."""
    h, w = as_rgb_or_rgba(images).shape[1:3]
    oh, ow = gendr_pix.output_size(h, w, min(max(float(request.scale), 1.0), 8.0))
    pixels = oh * ow if request.tile_size <= 0 else min(oh * ow, request.tile_size**2)
    return int(bytes_per_output_pixel(model) * pixels)


def plan(model: PixModel, frames: int, out_hw: tuple[int, int], request: UpscaleRequest,
         free_bytes: int | None) -> Plan:
    """Choose the tile size and how many frames go through the model at once.

    A tile_size > 0 is the user's choice (one frame per call). Automatic: whole frames, as many per
    call as fit in MEMORY_FRACTION of `free_bytes`; tiles when one frame does not fit. Whatever is
    chosen, the core still halves the tile on an out-of-memory error.
    """
    if request.tile_size > 0:
        return Plan(request.tile_size, 1)
    if free_bytes is None:
        return Plan(0, 1)
    align = model.network.config.unet.pixel_multiple
    bpp = bytes_per_output_pixel(model)
    budget = free_bytes * MEMORY_FRACTION
    per_frame = bpp * out_hw[0] * out_hw[1]
    if per_frame <= budget:
        return Plan(0, max(1, min(frames, MAX_FRAMES_PER_CALL, int(budget // per_frame))))
    edge = int(math.sqrt(budget / bpp)) // align * align
    edge = max(edge, _round_up(2 * request.tile_overlap + align, align), MIN_AUTO_TILE)
    log.info("GenDR-Pix: a %dx%d frame needs ~%.1f GB, %.1f GB free: %dpx tiles",
             out_hw[1], out_hw[0], per_frame / 1e9, free_bytes / 1e9, edge)
    return Plan(edge, 1)


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


class ProgressRelay:
    """Adapts the core's progress(done, total, piece) to a sink taking a small PIL preview.

    Previews are made at most every `min_interval` seconds (and for the last piece): each one is a
    JPEG sent to the browser, so one per tile would slow many-tile runs.
    """

    def __init__(self, sink: PreviewSink, preview_size: int = 512, min_interval: float = 0.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sink, self.preview_size, self.min_interval, self.clock = sink, preview_size, min_interval, clock
        self._last: float | None = None

    def __call__(self, done: int, total: int, piece: Tensor | None) -> None:
        now = self.clock()
        due = self._last is None or now - self._last >= self.min_interval or done >= total
        preview = None
        if piece is not None and due:
            preview = to_preview(piece, self.preview_size)
            self._last = now
        self.sink(done, total, preview)


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
    free_bytes: int | None = None,
    available_ram: int | None = None,
) -> Tensor:
    """ComfyUI IMAGE [B, H, W, C] in [0, 1] (C = 1, 3 or 4) -> upscaled IMAGE, float32 on the CPU.

    Grey images (C = 1) are upscaled as RGB. Runs where the network is (ComfyUI placed it).
    Raises ValueError for bad inputs, MemoryError when the output cannot fit in RAM.
    """
    images = as_rgb_or_rgba(images)
    options = gendr_pix.UpscaleOptions(  # validates scale, overlap and colour fix first
        scale=float(request.scale), ensemble=model.ensemble, guidance=model.guidance,
        tile_overlap=request.tile_overlap, color_fix=request.color_fix,
    )
    b, h, w, c = images.shape
    oh, ow = gendr_pix.output_size(h, w, options.scale)
    chosen = plan(model, b, (oh, ow), request, free_bytes)
    options = replace(options, tile=chosen.tile, batch_size=chosen.frames_per_call)
    check_output_fits((b, oh, ow, c), available_ram)
    return gendr_pix.upscale(model.network, images, options, layout="NHWC", positive=model.positive,
                             negative=model.negative, progress=progress, should_stop=should_stop)


def as_rgb_or_rgba(images: Tensor) -> Tensor:
    """Check a ComfyUI IMAGE; grey (1 channel) becomes RGB. Channel counts other than 1, 3, 4 and
    non-float tensors are left for the core to reject with its own message."""
    if not isinstance(images, Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"image must be a ComfyUI IMAGE [batch, height, width, channels], got {shape}")
    return images.expand(-1, -1, -1, 3) if images.shape[-1] == 1 else images


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple
