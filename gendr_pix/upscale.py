"""`upscale()`: the one public entry for inference. It fixes the order of everything else:

images -> chunks of the batch -> bicubic resize to the output size -> [-1, 1] -> tiles ->
anti-ringing -> grid filter -> self-ensemble -> guidance -> model -> blend -> colour fix -> grey inputs kept
grey -> clamp -> [0, 1], alpha resized apart.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .accel import device_dtype, resolve_device
from .antiring import antiringed, check_strength, range_window
from .callbacks import ProgressFn, Steps, StopFn, check_stop
from .choices import DEFAULT_ANTIRING, DEFAULT_GRID_FILTER
from .colorfix import COLOR_FIXES, ColorFix, color_fix, is_grey, to_grey
from .ensemble import ENSEMBLE_OFFSETS, self_ensemble
from .errors import SettingError
from .finite import finite_checked
from .gridfilter import check_window, grid_filtered
from .guidance import Guidance, Restorer, guided, model_passes
from .memory import fits_in, free_memory, plan_tile, round_up, simulate_peak
from .model import GenDRPix
from .tiling import is_out_of_memory, run_tiled, tile_count
from .unet import UNet

log = logging.getLogger(__name__)

Layout = Literal["NCHW", "NHWC"]


@dataclass(frozen=True, kw_only=True)
class UpscaleOptions:
    """What to compute. Defaults: the model's native scale, one pass with the artifact filters on (grid
    filter 64 px, anti-ringing 1: no extra pass), whole image, no colour fix. `PLAIN` turns the filters off."""

    scale: float | None = None
    """Output size = round(input size * scale), scale in [1, 8]; None = the model's trained scale."""
    ensemble: int = 1
    """Padding self-ensemble size: 1 (off), 2, 4 or 8 grid shifts; costs that many passes."""
    guidance: Guidance = field(default_factory=Guidance)
    grid_filter: int = DEFAULT_GRID_FILTER
    """Grid filter window in pixels (a multiple of 8; 0 = off): removes the local 8-periodic part of
    what the model added (`gridfilter.py`), at almost no cost, instead of K passes."""
    antiring: float = DEFAULT_ANTIRING
    """Pull the output into the local value range of the input (`antiring.py`): 0 = off, 1 = full.
    Removes halos and contours drawn on flat areas, no extra pass."""
    tile: int = 0
    """Tile edge in output pixels (rounded up to the model's multiple); 0 = automatic: the whole
    image if its simulated memory peak fits in the device's free memory, else the largest tile that
    does (`memory.plan_tile`). Either way the tile is halved on out-of-memory, down to `min_tile`."""
    tile_overlap: int = 64
    """Overlap between neighbouring tiles in output pixels."""
    min_tile: int = 128
    color_fix: ColorFix = "none"
    batch_size: int = 0
    """Images per model call; larger is faster for many small frames, needs more memory. 0 = automatic:
    as many whole images as fit in free memory (at most 8), 1 when tiling or when free memory is unknown."""

    def __post_init__(self) -> None:
        """Raises SettingError (a ValueError) naming the setting; see errors.py for front ends' names."""
        if self.scale is not None and not 1.0 <= self.scale <= 8.0:
            raise SettingError("{scale} must be in [1, 8], got {value}", value=self.scale)
        if self.ensemble not in ENSEMBLE_OFFSETS:
            raise SettingError("{ensemble} must be one of {sizes}, got {value}", sizes=sorted(ENSEMBLE_OFFSETS),
                               value=self.ensemble)
        check_window(self.grid_filter)
        check_strength(self.antiring)
        if self.tile < 0 or self.tile_overlap < 0 or self.batch_size < 0 or self.min_tile < 1:
            raise SettingError("{tile}, {tile_overlap} and {batch_size} must be >= 0, {min_tile} >= 1")
        if self.tile and self.tile <= self.tile_overlap:
            raise SettingError("{tile} ({value}) must be larger than {tile_overlap} ({overlap})", value=self.tile,
                               overlap=self.tile_overlap)
        if self.color_fix not in COLOR_FIXES:
            raise SettingError("{color_fix} must be one of {choices}, got {value!r}", choices=COLOR_FIXES,
                               value=self.color_fix)


PLAIN = {"grid_filter": 0, "antiring": 0.0}
"""The fields that turn the default artifact filters off: `UpscaleOptions(**PLAIN)` is the model's own
output, as the quality tables' "plain pass" rows and the tests that compare with a direct model call."""


def output_size(h: int, w: int, scale: float) -> tuple[int, int]:
    """round(h * scale), round(w * scale), halves rounded up, at least 1."""
    return max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))


def resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic, antialiased resize of [B, C, H, W] (the model's input; also the colour-fix reference)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)


def upscale(
    model: GenDRPix,
    images: Tensor,
    options: UpscaleOptions | None = None,
    *,
    layout: Layout = "NCHW",
    positive: Tensor | None = None,
    negative: Tensor | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | str | None = None,
) -> Tensor:
    """Upscale a batch of RGB or RGBA images in [0, 1].

    images: [B, 3 or 4, H, W] (layout "NCHW") or [B, H, W, 3 or 4] ("NHWC", ComfyUI's IMAGE), any device.
    Returns float32 on the CPU in the same layout, in [0, 1], with H, W = `output_size(H, W, scale)`.
    Alpha is resized (bicubic) on its own and reattached. `positive`/`negative` replace the model's
    stored embeddings ([1, L, context_dim]). `device`/`dtype` move the model for this call only
    (restored afterwards) and take what `load_model` takes, "auto" included; by default it runs where
    it is. Deterministic for fixed inputs.
    Raises ValueError for bad inputs (`SettingError` for bad settings), `NonFiniteOutputError` when the
    model gives NaN or infinite values, `Interrupted` when `should_stop` returns True.
    """
    opts = options or UpscaleOptions()
    nchw = _as_nchw(images, layout)
    b, c, h, w = nchw.shape
    oh, ow = output_size(h, w, opts.scale or model.config.scale)
    _check_context("positive", positive, model)
    _check_context("negative", negative, model)

    out = torch.empty((b, oh, ow, c) if layout == "NHWC" else (b, c, oh, ow), dtype=torch.float32)
    out_nchw = out.permute(0, 3, 1, 2) if layout == "NHWC" else out
    # Placed outside inference mode: a cast inside it would leave the weights as inference tensors.
    with _placed(model, device, dtype), torch.inference_mode():
        run_device, run_dtype = model.device, model.dtype
        align = model.config.unet.pixel_multiple
        tile, batch, fuse = _plan(model, opts, b, oh, ow)
        restore = finite_checked(_restorer(model, opts, positive, negative, fuse), model)
        chunks = range(0, b, batch)
        per_piece = opts.ensemble * model_passes(model, opts.guidance, positive, negative, fuse=fuse) \
            * _steps_per_pass(model)

        def steps_left(tile: int, chunks_left: int) -> int:
            return chunks_left * tile_count(oh, ow, tile, opts.tile_overlap, align) * per_piece

        steps = Steps(progress, should_stop, per_piece, steps_left(tile, len(chunks)))
        for i, start in enumerate(chunks):
            check_stop(should_stop)
            chunk = nchw[start:start + batch].to(run_device, torch.float32)
            reference = resize(chunk[:, :3], (oh, ow)).clamp(0, 1)
            alpha = _resize_alpha(chunk[:, 3:], (oh, ow)).cpu() if c == 4 else None
            grey = is_grey(chunk[:, :3]).cpu()
            # Only x stays on the device while the model runs: no float32 copies of the full image.
            x = (reference * 2 - 1).to(run_dtype)
            reference = reference.cpu() if opts.color_fix != "none" else None
            del chunk
            with steps.active():
                y, tile = _run_with_fallback(restore, x, opts, tile, align, steps,
                                             functools.partial(steps_left, chunks_left=len(chunks) - i))
            del x
            y = (y + 1) / 2 if reference is None else color_fix((y + 1) / 2, reference, opts.color_fix)
            if grey.any():
                keep = grey.to(y.device)
                y[keep] = to_grey(y[keep])
            y = y.clamp_(0, 1)
            if alpha is not None:
                y = torch.cat([y, alpha], dim=1)
            out_nchw[start:start + batch] = y
    return out


def _resize_alpha(alpha: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic like the colours, but fully opaque/transparent areas stay exactly 1/0 (not 1 - 1e-7)."""
    a = resize(alpha, size).clamp(0, 1)
    eps = 1e-5
    return torch.where(a > 1 - eps, 1.0, torch.where(a < eps, 0.0, a))


def _restorer(model: GenDRPix, opts: UpscaleOptions, positive: Tensor | None, negative: Tensor | None,
              fuse: bool) -> Restorer:
    model_passes = self_ensemble(guided(model, opts.guidance, positive, negative, fuse=fuse), opts.ensemble)
    window = range_window(opts.scale or model.config.scale)
    return antiringed(grid_filtered(model_passes, opts.grid_filter), opts.antiring, window)


MAX_AUTO_BATCH = 8
"""Most images per model call that `batch_size=0` picks; beyond this, batching gains little."""


def _plan(model: GenDRPix, opts: UpscaleOptions, images: int, oh: int, ow: int) -> tuple[int, int, bool]:
    """Tile edge, images per call, and whether to fuse the two guidance branches into one batch.

    Fusing costs the second branch's activations at once and pays wherever they fit: on GPUs one
    pass does not fill the device at small sizes, and on a 2-core CPU PadCFG with `small` at
    2048x2048 ran 1.6x faster fused (README "Performance"). Only when the whole image fits fused.
    """
    align = model.config.unet.pixel_multiple
    free = free_memory(model.device)

    def budget(n: int) -> int | None:  # minus the images themselves (input, resized reference) in float32
        return None if free is None else free - 3 * n * 3 * oh * ow * 4

    def peak(n: int, fuse: bool):
        return functools.partial(_simulated_peak, model.config, model.dtype, model.memory_format, n,
                                 _restorer_options(opts), fuse)

    batch = min(images, opts.batch_size or 1)
    if opts.tile:
        tile = round_up(opts.tile, align)
        if tile < max(oh, ow) and tile - opts.tile_overlap < align:
            raise SettingError("{tile} {value} is too small for {tile_overlap} {overlap}: tiles must be at least "
                               "{tile_overlap} + {align} = {least} px (or {tile} 0)", value=opts.tile,
                               overlap=opts.tile_overlap, align=align, least=opts.tile_overlap + align)
    else:
        tile = plan_tile(peak(batch, False), oh, ow, align, _smallest_tile(opts, align), budget(batch))
    whole = tile >= max(oh, ow)
    if not opts.batch_size and whole and free is not None:
        batch = min(images, MAX_AUTO_BATCH)  # halve until a whole batch fits
        while batch > 1 and not fits_in(peak(batch, False)(round_up(oh, align), round_up(ow, align)), budget(batch)):
            batch //= 2
    fuse = opts.guidance.passes == 2 and whole and free is not None
    if fuse:
        fuse = plan_tile(peak(batch, True), oh, ow, align, align, budget(batch)) >= tile
    log.debug("plan: %dpx tiles, %d per call, fused guidance %s, %.1f GB free", tile, batch, fuse, (free or 0) / 1e9)
    return tile, batch, fuse


def estimate_memory(model: GenDRPix, height: int, width: int, options: UpscaleOptions | None = None) -> int:
    """Simulated activation bytes of one model call for one height x width input image: the whole
    output, or one tile when `options.tile` is set. Hosts use it to free memory before `upscale()`."""
    opts = options or UpscaleOptions()
    align = model.config.unet.pixel_multiple
    oh, ow = output_size(height, width, opts.scale or model.config.scale)
    if opts.tile:
        oh, ow = min(oh, opts.tile), min(ow, opts.tile)
    return _simulated_peak(model.config, model.dtype, model.memory_format, 1, _restorer_options(opts), False,
                           round_up(oh, align), round_up(ow, align))


def _restorer_options(opts: UpscaleOptions) -> UpscaleOptions:
    """Only what shapes the restorer (the memoisation key of `_simulated_peak`)."""
    return UpscaleOptions(ensemble=opts.ensemble, guidance=opts.guidance, grid_filter=opts.grid_filter,
                          antiring=opts.antiring)


@functools.lru_cache(maxsize=256)
def _simulated_peak(config, dtype: torch.dtype, memory_format: torch.memory_format, batch: int,
                    opts: UpscaleOptions, fuse: bool, h: int, w: int) -> int:
    """Activation peak of one tile on a meta-device twin of the model (memoised per size: ~0.2 s each)."""
    with torch.device("meta"):
        twin = GenDRPix(config).to(dtype=dtype, memory_format=memory_format)
    x = torch.empty(batch, 3, h, w, device="meta", dtype=dtype)
    return simulate_peak(_restorer(twin, opts, None, None, fuse), x)


def _smallest_tile(opts: UpscaleOptions, align: int) -> int:
    """The smallest tile edge automatic planning and the out-of-memory fallback go down to: `min_tile`,
    but never so small that the overlap leaves no stride between tiles."""
    return round_up(max(opts.min_tile, opts.tile_overlap + align), align)


def _run_with_fallback(restore: Restorer, x: Tensor, opts: UpscaleOptions, tile: int, align: int, steps: Steps,
                       steps_left: Callable[[int], int]) -> tuple[Tensor, int]:
    """run_tiled, halving the tile on out-of-memory as ComfyUI's upscale node does.
    steps_left(tile): the steps from the start of this chunk to the end of the run with that tile."""

    def preview(done: int, total: int, piece: Tensor) -> None:
        # Only the first image: a preview needs no full-size float copy of the chunk.
        steps.piece_done(((piece[:1, :3] + 1) / 2).clamp(0, 1))

    while True:
        try:
            y = run_tiled(restore, x, tile=tile, overlap=opts.tile_overlap, align=align,
                          progress=preview if steps.progress is not None else None, should_stop=steps.should_stop)
            return y, tile
        except (torch.OutOfMemoryError, RuntimeError) as e:
            if not is_out_of_memory(e):
                raise
            _free_cache(x.device)
            new = max(round_up(tile // 2, align), _smallest_tile(opts, align))
            if new >= tile:
                raise
            log.warning("out of memory with %dpx tiles; retrying with %dpx", tile, new)
            tile = new
            steps.replan(steps_left(tile))  # the steps of the pass cut short stay counted as done


def _steps_per_pass(model: GenDRPix) -> int:
    """Progress steps one model pass reports; 1 for a stand-in network without our UNet (tests)."""
    unet = getattr(model, "unet", None)
    return unet.steps_per_pass if isinstance(unet, UNet) else 1


def _as_nchw(images: Tensor, layout: Layout) -> Tensor:
    if not isinstance(images, Tensor):
        raise ValueError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if layout not in ("NCHW", "NHWC"):
        raise ValueError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    if images.ndim != 4:
        raise ValueError(f"images must be 4-D {layout}, got shape {tuple(images.shape)}")
    nchw = images.permute(0, 3, 1, 2) if layout == "NHWC" else images
    b, c, h, w = nchw.shape
    if c not in (3, 4):
        raise ValueError(
            f"images must have 3 (RGB) or 4 (RGBA) channels in layout {layout}, got shape {tuple(images.shape)}"
        )
    if b < 1 or h < 1 or w < 1:
        raise ValueError(f"images must be non-empty, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"images must be floating point in [0, 1], got {images.dtype}")
    bad = sum(int((~torch.isfinite(image)).sum()) for image in images)  # per image: no batch-sized mask
    if bad:  # e.g. an fp16 VAE decode upstream; the model would spread them over the whole output
        raise ValueError(f"images contain {bad} NaN or infinite values (of {images.numel()}, shape "
                         f"{tuple(images.shape)}); the node or file that made them is at fault")
    return nchw


def _check_context(name: str, ctx: Tensor | None, model: GenDRPix) -> None:
    if ctx is None:
        return
    want = model.config.unet.context_dim
    if ctx.ndim != 3 or ctx.shape[0] != 1 or ctx.shape[-1] != want:
        raise ValueError(f"{name} embedding must be [1, tokens, {want}], got {tuple(ctx.shape)}")


def _free_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


@contextmanager
def _placed(model: GenDRPix, device, dtype) -> Iterator[None]:
    """Move/cast the model for one call and put it back, whatever happens."""
    before = (model.device, model.dtype)
    to_device = before[0] if device is None else resolve_device(device)
    to_dtype = before[1] if dtype is None else device_dtype(dtype, to_device)
    if (to_device, to_dtype) != before:
        model.to(device=to_device, dtype=to_dtype)
    try:
        yield
    finally:
        if (model.device, model.dtype) != before:
            model.to(device=before[0], dtype=before[1])
