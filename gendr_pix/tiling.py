"""Overlapping tiles with feathered blending, aligned to the model's grid, halved on out-of-memory.

Tiles start on multiples of `align` (the model's pixel multiple), so every tile sees the 8x8 shuffle
grid and the UNet's down-sampling grid at the same phase as the whole image would. Along each inner
tile edge, the first quarter of the overlap gets weight 0 (the neighbour owns it), the middle half a
smooth ramp, the rest 1. So if the model's receptive radius is at most overlap/4 output pixels, the
tiled result equals the untiled one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .callbacks import ProgressFn, StopFn, check_stop
from .guidance import Restorer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def plan_spans(n: int, tile: int, overlap: int, align: int) -> list[Span]:
    """Cover [0, n) with spans of length `tile` (the last may be up to align-1 longer) starting on
    multiples of `align`, neighbours overlapping by at least `overlap`."""
    if n <= tile:
        return [Span(0, n)]
    stride = (tile - overlap) // align * align
    if stride <= 0:
        raise ValueError(f"tile {tile} leaves no stride after overlap {overlap} at alignment {align}")
    spans = [Span(0, tile)]
    while spans[-1].end < n:
        start = spans[-1].start + stride
        if start + tile >= n:
            start = (n - tile) // align * align  # align the last one to the end, no tiny sliver
            if start <= spans[-1].start:
                spans[-1] = Span(spans[-1].start, n)
                break
            spans.append(Span(start, n))
            break
        spans.append(Span(start, start + tile))
    return spans


def _ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> Tensor:
    w = torch.ones(length)
    margin = overlap // 4
    ramp = overlap - 2 * margin
    if ramp > 0:
        # Raised cosine over the middle half of the overlap, 0 before it.
        t = (torch.arange(ramp, dtype=torch.float32) + 0.5) / ramp
        up = torch.cat([torch.zeros(margin), 0.5 - 0.5 * torch.cos(math.pi * t)])[:length]
        if ramp_start:
            w[: up.numel()] = torch.minimum(w[: up.numel()], up)
        if ramp_end:
            w[length - up.numel():] = torch.minimum(w[length - up.numel():], up.flip(0))
    return w


def run_tiled(fn: Restorer, x: Tensor, *, tile: int, overlap: int, align: int,
              out_device: torch.device | str = "cpu", progress: ProgressFn | None = None,
              should_stop: StopFn | None = None, done_before: int = 0, total: int | None = None) -> Tensor:
    """Apply `fn` ([B, C, h, w] -> [B, C', h, w]) over tiles of `x`; blend into a tensor on `out_device`.

    One tile covering the whole image is the fast path: no copies, no weights.
    """
    h, w = x.shape[-2:]
    rows, cols = plan_spans(h, tile, overlap, align), plan_spans(w, tile, overlap, align)
    count = len(rows) * len(cols)
    total = total or count
    if count == 1:
        check_stop(should_stop)
        y = _to_float32(fn(x), out_device)
        if progress:
            progress(done_before + 1, total, y)
        return y
    out = None
    weight = torch.zeros(1, 1, h, w, device=out_device)
    done = done_before
    for r in rows:
        wr = _ramp(r.end - r.start, overlap, r.start > 0, r.end < h)
        for c in cols:
            check_stop(should_stop)
            y = _to_float32(fn(x[..., r.start:r.end, c.start:c.end]), out_device)
            if out is None:
                out = torch.zeros(*y.shape[:2], h, w, device=out_device)
            wc = _ramp(c.end - c.start, overlap, c.start > 0, c.end < w)
            wt = (wr[:, None] * wc[None, :]).to(out_device)
            out[..., r.start:r.end, c.start:c.end] += y * wt
            weight[..., r.start:r.end, c.start:c.end] += wt
            done += 1
            if progress:
                progress(done, total, y)
    return out / weight


def _to_float32(y: Tensor, device: torch.device | str) -> Tensor:
    """Move first, then widen: widening first would make a float32 copy of the tile on the GPU."""
    return y.to(device).float()


def is_out_of_memory(e: BaseException) -> bool:
    """CUDA/MPS/CPU allocator failures, which torch reports with different types."""
    if isinstance(e, torch.OutOfMemoryError):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text
                                            or "Invalid buffer size" in text)


def tile_count(h: int, w: int, tile: int, overlap: int, align: int) -> int:
    return len(plan_spans(h, tile, overlap, align)) * len(plan_spans(w, tile, overlap, align))
