"""Artifact scores that LPIPS and DISTS barely see: halos (overshoot) and false edges (ghosting).

Both compare an output with its ground truth on luma, in 8-bit levels, and both are 0 for the ground
truth itself by construction. They are differentiable, so the training loss `loss.artifacts` charges
exactly what `eval` reports.

- `halo`: how far the output leaves the ground truth's local value range (min..max over a
  `RANGE_WINDOW` window) near the ground truth's edges. An unsharp mask, ringing and over-sharpening
  overshoot on both sides of an edge; a blurred or slightly shifted edge stays inside the range.
- `false_edges`: edge strength (gradient magnitude of the lightly smoothed luma) that the output
  has where the ground truth has no edge within `EDGE_SLACK` pixels, as a share of the ground
  truth's total edge strength. A ghost copy of an outline, a hallucinated contour or an 8x8 block
  edge in a flat area counts; real edges drawn a pixel or two off, or drawn sharper, do not (that
  is `halo`'s business).
The grid score (8x8 shuffle pattern) lives in `fourier.grid_score`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .metrics import rgb_to_y

RANGE_WINDOW = 7
"""Window (px) of the ground truth's local min/max: wide enough that an edge moved by 1-3 px stays in
range, narrow enough that a halo a few pixels out from an edge does not."""
EDGE_BAND = 8
"""Pixels within this distance of a ground-truth edge are 'near an edge' (halos of sharpening filters
reach this far at x4)."""
EDGE_THRESHOLD = 6.0
"""Gradient magnitude (8-bit levels per px, after `SMOOTH_SIGMA`) that makes a pixel an edge: a step of
about 15 levels."""
EDGE_SLACK = 2
"""A false edge must lie more than this many px from every ground-truth edge at least as strong."""
MIN_EDGE = 2.0
"""Output gradients below this (levels per px) are texture noise, not edges, for `false_edges`."""
SMOOTH_SIGMA = 1.0


def luma_levels(x: Tensor) -> Tensor:
    """[B, 3, H, W] RGB in [0, 1] -> [B, 1, H, W] luma in 8-bit levels from 0 (BT.601 weights)."""
    return rgb_to_y(x.float()) - 16.0


def _smooth(y: Tensor, sigma: float = SMOOTH_SIGMA) -> Tensor:
    r = max(1, int(3 * sigma + 0.5))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=y.dtype, device=y.device).pow(2) / (2 * sigma**2))
    k = k / k.sum()
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))


def gradient_magnitude(y: Tensor) -> Tensor:
    """Central-difference gradient magnitude of [B, 1, H, W] luma after a light Gaussian smoothing."""
    s = F.pad(_smooth(y), (1, 1, 1, 1), mode="replicate")
    dx = (s[..., 1:-1, 2:] - s[..., 1:-1, :-2]) / 2
    dy = (s[..., 2:, 1:-1] - s[..., :-2, 1:-1]) / 2
    return (dx.pow(2) + dy.pow(2) + 1e-12).sqrt()


def _max_filter(x: Tensor, radius: int) -> Tensor:
    return F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius) if radius else x


def _check(output: Tensor, reference: Tensor) -> None:
    if output.shape != reference.shape or output.ndim != 4 or output.shape[1] != 3:
        raise ValueError(f"need two [B, 3, H, W] images of one shape, got {tuple(output.shape)} and "
                         f"{tuple(reference.shape)}")


def edge_band(reference_luma: Tensor) -> Tensor:
    """[B, 1, H, W] 0/1 mask of pixels within `EDGE_BAND` px of a ground-truth edge."""
    edges = (gradient_magnitude(reference_luma) > EDGE_THRESHOLD).float()
    return _max_filter(edges, EDGE_BAND)


def overshoot_map(output: Tensor, reference: Tensor) -> Tensor:
    """[B, 1, H, W] levels by which the output's luma leaves the ground truth's local range (>= 0)."""
    _check(output, reference)
    o, r = luma_levels(output), luma_levels(reference)
    r = r.detach()
    hi = _max_filter(r, RANGE_WINDOW // 2)
    lo = -_max_filter(-r, RANGE_WINDOW // 2)
    return (o - hi).relu() + (lo - o).relu()


def halo(output: Tensor, reference: Tensor) -> Tensor:
    """Mean overshoot (8-bit levels) over the pixels near ground-truth edges, per image [B]; 0 where
    the ground truth has no edge."""
    band = edge_band(luma_levels(reference).detach())
    over = overshoot_map(output, reference) * band
    return over.sum(dim=(1, 2, 3)) / band.sum(dim=(1, 2, 3)).clamp_min(1.0)


def false_edge_map(output: Tensor, reference: Tensor) -> Tensor:
    """[B, 1, H, W] output edge strength where no ground-truth edge lies within `EDGE_SLACK` px, beyond
    the ground truth's own gradient there (>= 0)."""
    _check(output, reference)
    g_out = gradient_magnitude(luma_levels(output))
    allowed = _max_filter(gradient_magnitude(luma_levels(reference)).detach(), EDGE_SLACK)
    no_edge = (allowed <= EDGE_THRESHOLD).to(g_out.dtype)
    return (g_out - allowed.clamp_min(MIN_EDGE)).relu() * no_edge


def false_edges(output: Tensor, reference: Tensor) -> Tensor:
    """Edge strength the output adds where the ground truth has none, in % of the ground truth's total
    edge strength, per image [B]."""
    excess = false_edge_map(output, reference).sum(dim=(1, 2, 3))
    total = gradient_magnitude(luma_levels(reference)).detach().sum(dim=(1, 2, 3))
    return 100 * excess / total.clamp_min(1.0)


def artifact_loss(output: Tensor, target: Tensor) -> Tensor:
    """Training loss `loss.artifacts`: per-pixel overshoot near edges plus false-edge strength, for
    [B, 3, H, W] in [-1, 1], in [0, 1] units (levels / 255) like an L1 on images in [0, 1]. The target
    side is detached: only the output is pushed."""
    with torch.autocast(output.device.type, enabled=False):  # float32 also under bf16 autocast
        output, target = (output.float() + 1) / 2, (target.detach().float() + 1) / 2
        band = edge_band(luma_levels(target))
        over = (overshoot_map(output, target) * band).mean()
        return (over + false_edge_map(output, target).mean()) / 255
