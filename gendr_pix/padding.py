"""Padding helpers. Every inference wrapper pads, runs, and crops back with these."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

Pads = tuple[int, int, int, int]
"""(left, right, top, bottom) in pixels, as `torch.nn.functional.pad` takes them for the last two dims."""


def reflect_pad(x: Tensor, pads: Pads) -> Tensor:
    """Reflect-pad [B, C, H, W] by any amount, even beyond the image size or on a 1-pixel image.

    torch's reflect mode needs pad < size; larger pads are applied in rounds of at most size-1 (the
    result is the periodic mirror continuation). A 1-pixel axis has nothing to mirror: replicate it.
    """
    left, right, top, bottom = pads
    if min(pads) < 0:
        raise ValueError(f"pads must be >= 0, got {pads}")
    while left or right or top or bottom:
        h, w = x.shape[-2:]
        step_w = (min(left, w - 1), min(right, w - 1)) if w > 1 else (0, 0)
        step_h = (min(top, h - 1), min(bottom, h - 1)) if h > 1 else (0, 0)
        if w == 1 and (left or right):
            x = F.pad(x, (left, right, 0, 0), mode="replicate")
            left = right = 0
            continue
        if h == 1 and (top or bottom):
            x = F.pad(x, (0, 0, top, bottom), mode="replicate")
            top = bottom = 0
            continue
        x = F.pad(x, (*step_w, *step_h), mode="reflect")
        left, right = left - step_w[0], right - step_w[1]
        top, bottom = top - step_h[0], bottom - step_h[1]
    return x


def crop(x: Tensor, pads: Pads) -> Tensor:
    """Undo a pad: remove `pads` = (left, right, top, bottom) from the last two dims."""
    left, right, top, bottom = pads
    h, w = x.shape[-2:]
    return x[..., top : h - bottom, left : w - right]


def pads_to_multiple(h: int, w: int, multiple: int) -> Pads:
    """Right/bottom pads that make (h, w) multiples of `multiple`."""
    return (0, -w % multiple, 0, -h % multiple)
