"""Anti-ringing: keep the model's output inside the local value range of its input.

Why: a one-step generator trained on few photos overshoots. It draws bright and dark halos along
outlines and ghost contours in flat areas (skin, walls, sky), where the small input holds nothing of
the kind. A clamp of each output pixel to the range (min..max per channel) of the input pixels
around it removes both: a real edge lies between input pixels of both its sides, so it stays inside
the range, while a halo or a contour drawn on a flat patch does not. Image scalers use the same
trick against the ringing of sharp kernels (mpv's `antiring`).

The range is read off the resized input (bicubic, which passes through the small image's pixel values)
over `range_window(scale)` output pixels, about one input pixel to each side, so it costs two
max-pools per tile, no model pass. `strength` blends: 0 = off, 1 = the full clamp.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import SettingError
from .guidance import Restorer


def check_strength(strength: float) -> None:
    if not 0.0 <= strength <= 1.0:
        raise SettingError("{antiring} must be in [0, 1] (0 = off, 1 = full), got {value}", value=strength)


def range_window(scale: float) -> int:
    """Output pixels over which the input's range is taken: one input pixel to each side, odd."""
    return 2 * math.ceil(scale) + 1


def local_range(x: Tensor, window: int) -> tuple[Tensor, Tensor]:
    """Per-channel (min, max) of [B, C, H, W] over a `window` x `window` neighbourhood (same size).

    Separable, and each 1-D pass doubles its span with elementwise maxima of shifted views (log2
    `window` + 1 ops): `max_pool2d` with stride 1 made anti-ringing cost as much as the model pass
    itself at 2048² on a CPU (2.0 s; this: about 0.1 s)."""
    pad = window // 2
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    hi = _sliding(_sliding(padded, window, -1, torch.maximum), window, -2, torch.maximum)
    lo = _sliding(_sliding(padded, window, -1, torch.minimum), window, -2, torch.minimum)
    return lo, hi


def _sliding(x: Tensor, window: int, dim: int, op) -> Tensor:
    """`op` (max or min) over each run of `window` consecutive entries along `dim` ("valid": the
    result is `window` - 1 shorter)."""
    out, span = x, 1
    while 2 * span <= window:  # out[i] covers x[i : i + span]
        n = out.shape[dim] - span
        out = op(out.narrow(dim, 0, n), out.narrow(dim, span, n))
        span *= 2
    if span < window:  # cover the rest with a second, overlapping run
        n = out.shape[dim] - (window - span)
        out = op(out.narrow(dim, 0, n), out.narrow(dim, window - span, n))
    return out


def antiringed(fn: Restorer, strength: float, window: int) -> Restorer:
    """Wrap `fn` ([-1, 1] resized input -> restored image) so its output is pulled into the input's
    local range by `strength`; strength 0 returns `fn` itself."""
    check_strength(strength)
    if not strength:
        return fn

    def run(x: Tensor) -> Tensor:
        y = fn(x)
        lo, hi = local_range(x, window)
        clamped = torch.minimum(torch.maximum(y, lo), hi)
        return clamped if strength == 1 else torch.lerp(y, clamped, strength)

    return run
