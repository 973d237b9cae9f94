"""The grid filter: removes what the model added that repeats every 8 pixels, and little else."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import gendr_pix as g
from gendr_pix.gridfilter import grid_filtered, grid_pattern


def smooth(shape, seed: int, factor: int = 16) -> torch.Tensor:
    """Random image without fine detail (upsampled noise)."""
    gen = torch.Generator().manual_seed(seed)
    b, c, h, w = shape
    low = torch.rand(b, c, h // factor + 2, w // factor + 2, generator=gen) * 2 - 1
    return F.interpolate(low, size=(h, w), mode="bicubic", align_corners=False) * 0.5


def planted_pattern(shape, seed: int) -> torch.Tensor:
    """A zero-mean 8x8 tile repeated over the image: what a pixel-shuffle grid artifact looks like."""
    gen = torch.Generator().manual_seed(seed)
    b, c, h, w = shape
    tile = torch.randn(1, c, 8, 8, generator=gen)
    tile = 0.05 * (tile - tile.mean((-2, -1), keepdim=True))
    return tile.repeat(b, 1, -(-h // 8), -(-w // 8))[..., :h, :w]


def detail(shape, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 0.05 * torch.randn(shape, generator=gen)


@pytest.mark.parametrize("size", [(128, 128), (100, 140)])
def test_removes_a_planted_grid_pattern_and_keeps_ordinary_detail(size):
    shape = (2, 3, *size)
    x, pattern, texture = smooth(shape, 0), planted_pattern(shape, 1), detail(shape, 2)
    out = grid_filtered(lambda _: x + texture + pattern)(x)
    left_of_pattern = ((out - x - texture) * pattern).sum() / pattern.pow(2).sum()  # projection on it
    assert abs(left_of_pattern) < 0.02  # measured 0.002-0.003
    kept = ((out - x) * texture).sum() / texture.pow(2).sum()
    assert kept > 0.95  # white noise loses only the narrow notches' share (measured 0.98)


def test_the_input_is_never_filtered():
    """Only the model's residual is: the resized input's own 8-periodic content (a fence, JPEG blocks
    of a small source) stays, and an identity restorer changes nothing."""
    shape = (1, 3, 96, 96)
    x = smooth(shape, 0) + planted_pattern(shape, 1)
    torch.testing.assert_close(grid_filtered(lambda v: v)(x), x)


def test_the_pattern_is_estimated_locally():
    """A pattern on one half is removed there and leaves the other half almost untouched; a global
    phase average would subtract half of it from the clean half."""
    shape = (1, 3, 256, 512)
    pattern = planted_pattern(shape, 1)
    pattern[..., 256:] = 0
    x = smooth(shape, 0)
    out = grid_filtered(lambda _: x + pattern, window=64)(x)
    far_left, far_right = (..., slice(None), slice(0, 128)), (..., slice(None), slice(384, 512))
    assert (out - x)[far_left].abs().max() < 0.01 * pattern.abs().max()
    assert (out - x)[far_right].abs().max() < 0.02 * pattern.abs().max()


def test_grid_pattern_is_zero_mean_per_cell_and_keeps_shape():
    r = detail((1, 3, 45, 70), 0) + planted_pattern((1, 3, 45, 70), 1)
    p = grid_pattern(r, 32)
    assert p.shape == r.shape and torch.isfinite(p).all()
    cells = p[..., :40, :64].unfold(2, 8, 8).unfold(3, 8, 8).mean((-2, -1))
    assert cells.abs().max() < 1e-6


def test_tiny_images_and_window_zero():
    fn = lambda v: v + 0.1  # noqa: E731
    assert grid_filtered(fn, 0) is fn
    x = torch.rand(1, 3, 3, 5)
    out = grid_filtered(fn, 64)(x)
    assert out.shape == x.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("window", [-8, 12, 2048])
def test_bad_windows_are_named(window):
    with pytest.raises(ValueError, match=f"grid_filter must be 0 .off. or a multiple of 8.*got {window}"):
        g.UpscaleOptions(grid_filter=window)


def test_upscale_applies_it_after_ensemble_and_guidance(tiny):
    images = torch.rand(1, 3, 24, 24)
    opts = dict(scale=4, ensemble=2, guidance=g.Guidance(scale=1.5, mode="padcfg"), antiring=0.0)
    plain = g.upscale(tiny, images, g.UpscaleOptions(**opts, grid_filter=0))
    filtered = g.upscale(tiny, images, g.UpscaleOptions(**opts, grid_filter=32))
    reference = g.resize(images, (96, 96)).clamp(0, 1) * 2 - 1
    # Rebuild what upscale does (no clamp inside the range here: compare before clamping via the residual).
    restore = g.self_ensemble(g.guided(tiny, g.Guidance(scale=1.5, mode="padcfg")), 2)
    with torch.inference_mode():
        expected = ((grid_filtered(restore, 32)(reference) + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(filtered, expected, atol=1e-5, rtol=0)
    assert (filtered - plain).abs().max() > 1e-3
