"""Classifier-free guidance (CFG) and the paper's padding-fused variant (PadCFG).

Both turn the model into a `Restorer`: [B, 3, H, W] in [-1, 1] -> same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from .model import GenDRPix
from .padding import crop, reflect_pad

Restorer = Callable[[Tensor], Tensor]
GuidanceMode = Literal["cfg", "padcfg"]
GUIDANCE_MODES: tuple[str, ...] = ("cfg", "padcfg")

# PadCFG's two branches see the 8x8 shuffle grid at different phases: (left, right, top, bottom).
PADCFG_POSITIVE_PADS = (4, 4, 4, 4)
PADCFG_NEGATIVE_PADS = (3, 5, 3, 5)


@dataclass(frozen=True, kw_only=True)
class Guidance:
    """How the positive and negative conditions are combined."""

    scale: float = 1.0
    """w. cfg: neg + w (pos - neg); padcfg: w pos' + (1 - w) neg'. w = 1 with cfg is one plain pass."""
    mode: GuidanceMode = "cfg"

    def __post_init__(self) -> None:
        if self.mode not in GUIDANCE_MODES:
            raise ValueError(f"guidance mode must be one of {GUIDANCE_MODES}, got {self.mode!r}")
        if not -10.0 <= self.scale <= 30.0:
            raise ValueError(f"guidance scale must be in [-10, 30], got {self.scale}")

    @property
    def passes(self) -> int:
        """Model evaluations per call."""
        return 1 if (self.mode == "cfg" and self.scale == 1.0) else 2


def guided(model: GenDRPix, guidance: Guidance, positive: Tensor | None = None,
           negative: Tensor | None = None, *, fuse: bool = False) -> Restorer:
    """Wrap `model` with guidance. positive/negative: [1, L, context_dim]; default: the model's own.

    fuse: run the two branches as one batch of 2B instead of two calls of B. Same result (up to
    float rounding); faster where one call does not fill the device (GPUs at small sizes), but it holds
    both branches' activations at once, so the caller decides from free memory (see `memory.py`).
    Embeddings of different lengths (a graph's 77-token prompt against the stored negative) cannot
    share a batch, so they always run as two calls.
    """
    pos, neg = _conditions(model, positive, negative)
    fuse = _fusable(fuse, pos, neg)
    w = guidance.scale
    if guidance.mode == "cfg":
        if w == 1.0:
            return lambda x: model(x, pos)

        def cfg(x: Tensor) -> Tensor:
            uncond, cond = _both(model, x, neg, x, pos) if fuse else (model(x, neg), model(x, pos))
            return uncond + w * (cond - uncond)

        return cfg

    def padcfg(x: Tensor) -> Tensor:
        # out = w G(pad(x, 4,4,4,4), pos) + (1 - w) G(pad(x, 3,5,3,5), neg), each cropped back (paper).
        xa, xb = reflect_pad(x, PADCFG_POSITIVE_PADS), reflect_pad(x, PADCFG_NEGATIVE_PADS)
        ya, yb = _both(model, xa, pos, xb, neg) if fuse else (model(xa, pos), model(xb, neg))
        return w * crop(ya, PADCFG_POSITIVE_PADS) + (1.0 - w) * crop(yb, PADCFG_NEGATIVE_PADS)

    return padcfg


def model_passes(model: GenDRPix, guidance: Guidance, positive: Tensor | None = None,
                 negative: Tensor | None = None, *, fuse: bool = False) -> int:
    """How many model passes one call of `guided()` with the same arguments runs (fused: one)."""
    if guidance.passes == 1:
        return 1
    return 1 if _fusable(fuse, *_conditions(model, positive, negative)) else 2


def _conditions(model: GenDRPix, positive: Tensor | None, negative: Tensor | None) -> tuple[Tensor, Tensor]:
    return (model.positive if positive is None else positive, model.negative if negative is None else negative)


def _fusable(fuse: bool, pos: Tensor, neg: Tensor) -> bool:
    return fuse and pos.shape[1] == neg.shape[1]


def _both(model: GenDRPix, xa: Tensor, ca: Tensor, xb: Tensor, cb: Tensor) -> tuple[Tensor, Tensor]:
    """model(xa, ca), model(xb, cb) as one batched call; xa and xb have the same shape."""
    b = xa.shape[0]
    context = torch.cat([ca.expand(b, -1, -1), cb.to(ca.device).expand(b, -1, -1)])
    ya, yb = model(torch.cat([xa, xb]), context).chunk(2)
    return ya, yb
