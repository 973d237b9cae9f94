"""Dead-leaves images: an endless source of training crops with nothing in them to memorise.

Why: the default model is trained on a handful of photographs and memorises them (on real-world
inputs its LPIPS on training photos is half that on held-out ones). A dead-leaves image is opaque
random shapes occluding one another, sizes drawn from p(r) ~ r^-3; it shares the scale invariance,
edge and occlusion statistics of natural images (Lee, Mumford & Huang 2001), and restoration
networks trained on such images come close to ones trained on photos (Achddou, Gousseau & Ladjal,
"Synthetic images as a regularity prior for image restoration neural networks", SSVM 2021). Mixed
into the photos (`DataConfig.synthetic_prob`), they teach the part of restoration that does not
depend on content: flat areas are flat (remove the noise), edges are sharp.

Leaves here are rotated ellipses (round and elongated edges), each flat with a slight linear shade or,
with `texture_prob`, a sine grating (regular texture). Colours come from the caller, e.g. random
pixels of a photo, so the palette is natural.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

_BATCH = 2048  # leaf parameters are drawn this many at a time (vectorised draws, same stream)


def sample_radius(u: np.ndarray, r_min: float, r_max: float, alpha: float) -> np.ndarray:
    """Inverse CDF of p(r) ~ r^-alpha on [r_min, r_max] (alpha != 1) for uniforms u in [0, 1)."""
    a, b = r_min ** (1 - alpha), r_max ** (1 - alpha)
    return (a - u * (a - b)) ** (1 / (1 - alpha))


def dead_leaves(size: int, rng: np.random.Generator, colors: np.ndarray, *, r_min: float = 4.0,
                r_max: float | None = None, alpha: float = 3.0, texture_prob: float = 0.3,
                coverage: float = 0.999, max_leaves: int = 60_000) -> Tensor:
    """One dead-leaves image, float32 [3, size, size] in [0, 1].

    `colors`: [N, 3] floats in [0, 1]; each leaf takes one at random. Leaves are laid from the front
    to the back (each one only fills pixels still uncovered) until `coverage` of the image is covered
    or `max_leaves` are used; the rest takes one more colour as the background.
    Raises ValueError for an empty palette or a size below 8.
    """
    if size < 8:
        raise ValueError(f"dead-leaves size must be >= 8 px, got {size}")
    colors = np.asarray(colors, dtype=np.float32).reshape(-1, 3)
    if not len(colors):
        raise ValueError("dead_leaves needs at least one colour")
    r_max = float(r_max or size / 2)
    img = np.zeros((size, size, 3), np.float32)
    free = np.ones((size, size), bool)
    left, stop = size * size, int(size * size * (1 - coverage))
    drawn = 0
    while left > stop and drawn < max_leaves:
        radius = sample_radius(rng.uniform(size=_BATCH), r_min, r_max, alpha)
        aspect = rng.uniform(0.3, 1.0, _BATCH)
        angle = rng.uniform(0, np.pi, _BATCH)
        centre = rng.uniform(-0.1, 1.1, (_BATCH, 2)) * size
        pick = rng.integers(len(colors), size=_BATCH)
        shade = rng.normal(0, 0.04, (_BATCH, 2)).astype(np.float32)
        textured = rng.uniform(size=_BATCH) < texture_prob
        freq = rng.uniform(1 / 32, 1 / 6, _BATCH) * 2 * np.pi  # periods 6-32 px
        grating = rng.uniform(0, np.pi, _BATCH)
        amp = rng.uniform(0.03, 0.15, _BATCH).astype(np.float32)
        for k in range(_BATCH):
            r, (cy, cx) = radius[k], centre[k]
            y0, y1 = max(0, int(cy - r)), min(size, int(cy + r) + 1)
            x0, x1 = max(0, int(cx - r)), min(size, int(cx + r) + 1)
            drawn += 1
            if y0 >= y1 or x0 >= x1:
                continue
            dy = (np.arange(y0, y1, dtype=np.float32) - cy)[:, None]
            dx = (np.arange(x0, x1, dtype=np.float32) - cx)[None, :]
            c, s = np.cos(angle[k]), np.sin(angle[k])
            u, v = c * dx + s * dy, (-s * dx + c * dy) / aspect[k]
            mask = (u * u + v * v <= r * r) & free[y0:y1, x0:x1]
            n = int(mask.sum())
            if n:
                value = colors[pick[k]] + (shade[k, 0] * u + shade[k, 1] * v)[..., None] / max(r, 1.0)
                if textured[k]:
                    value = value + amp[k] * np.sin(freq[k] * (np.cos(grating[k]) * dx + np.sin(grating[k]) * dy)
                                                    )[..., None]
                img[y0:y1, x0:x1][mask] = value[mask]
                free[y0:y1, x0:x1] &= ~mask
                left -= n
            if left <= stop or drawn >= max_leaves:
                break
    img[free] = colors[rng.integers(len(colors))]
    return torch.from_numpy(img).permute(2, 0, 1).clamp(0, 1).contiguous()
