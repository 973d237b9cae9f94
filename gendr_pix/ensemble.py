"""Padding self-ensemble: average the model over shifts of the 8x8 pixel-shuffle grid.

An x8 pixel-shuffle can leave patterns that repeat every 8 pixels, locked to the grid. Shifting the
image against the grid by (dy, dx) and cropping back moves such a pattern relative to the content;
averaging over a set of shifts cancels every pattern frequency (ky, kx) whose phase factor
exp(2*pi*i*(ky*dy + kx*dx)/8) averages to zero over the set.
"""

from __future__ import annotations

from torch import Tensor

from .config import SHUFFLE
from .guidance import Restorer
from .padding import crop, reflect_pad

# (dy, dx) grid offsets per ensemble size. Each set is a subgroup of Z8 x Z8, so a K-shift set cancels
# all but 64/K of the 64 grid frequencies, the (0, 0) content among those kept:
# K=2 keeps ky+kx even; K=4 keeps ky, kx both even; K=8 also needs ky = kx (mod 4).
ENSEMBLE_OFFSETS: dict[int, tuple[tuple[int, int], ...]] = {
    1: ((0, 0),),
    2: ((0, 0), (4, 4)),
    4: ((0, 0), (4, 4), (0, 4), (4, 0)),
    8: ((0, 0), (4, 4), (0, 4), (4, 0), (2, 2), (6, 6), (2, 6), (6, 2)),
}


def offset_pads(dy: int, dx: int) -> tuple[int, int, int, int]:
    """Pad p before and 8 - p after on each axis: (left, right, top, bottom)."""
    return (dx, SHUFFLE - dx, dy, SHUFFLE - dy)


def on_shifted_grid(fn: Restorer, x: Tensor, dy: int, dx: int) -> Tensor:
    """`fn(x)` with `x` moved against the 8x8 grid by (dy, dx) (reflect-padded) and the result cropped
    back into place: same shape as fn(x)."""
    pads = offset_pads(dy, dx)
    return crop(fn(reflect_pad(x, pads)), pads)


def self_ensemble(fn: Restorer, size: int) -> Restorer:
    """Wrap `fn` so it returns the mean over `size` grid shifts (1 = `fn` itself)."""
    if size not in ENSEMBLE_OFFSETS:
        raise ValueError(f"ensemble size must be one of {sorted(ENSEMBLE_OFFSETS)}, got {size}")
    if size == 1:
        return fn
    offsets = ENSEMBLE_OFFSETS[size]

    def run(x: Tensor) -> Tensor:
        total = None
        for dy, dx in offsets:
            y = on_shifted_grid(fn, x, dy, dx)
            total = y if total is None else total + y
        return total / len(offsets)

    return run
