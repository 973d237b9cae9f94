"""Anti-ringing: the output stays inside the input's local range, real edges survive, and upscale()
applies it last, after the grid filter."""

from __future__ import annotations

import pytest
import torch

import gendr_pix as g
from gendr_pix.antiring import antiringed, local_range, range_window
from gendr_pix.gridfilter import grid_filtered


def step_edge(size: int = 48) -> torch.Tensor:
    """A vertical step from -0.5 to 0.5 in [-1, 1], 3 channels."""
    x = torch.full((1, 3, size, size), -0.5)
    x[..., size // 2:] = 0.5
    return x


def test_window_spans_one_input_pixel_each_side():
    assert range_window(4) == 9 and range_window(2) == 5 and range_window(1.5) == 5


def test_local_range_is_the_neighbourhood_min_and_max():
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 4] = 1.0
    lo, hi = local_range(x, 3)
    assert hi[0, 0, 3:6, 3:6].eq(1).all() and hi[0, 0, 0, 0] == 0 and lo.eq(0).all()


def test_halo_and_flat_area_contour_are_removed_and_the_edge_is_kept():
    x = step_edge()
    halo = x.clone()
    halo[..., 20:24] -= 0.3  # dark undershoot before the step
    halo[..., 24:28] += 0.3  # bright overshoot after it
    contour = torch.zeros_like(x)
    contour[..., 8, :16] = -0.4  # lines drawn on the flat areas, away from the step
    contour[..., 8, 32:] = -0.4
    out = antiringed(lambda _: halo + contour, 1.0, 9)(x)
    # the step itself is untouched; the overshoot on both sides and the contour are gone
    torch.testing.assert_close(out, x)


def test_strength_blends_and_zero_is_off():
    x = step_edge()
    fn = lambda t: t + 0.2  # noqa: E731
    assert antiringed(fn, 0.0, 9) is fn
    half = antiringed(fn, 0.5, 9)(x)
    full = antiringed(fn, 1.0, 9)(x)
    torch.testing.assert_close(half, (fn(x) + full) / 2)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_bad_strength_is_named(bad):
    with pytest.raises(g.SettingError, match="antiring must be in"):
        g.UpscaleOptions(antiring=bad)


def test_upscale_applies_it_after_the_grid_filter(tiny):
    images = torch.rand(1, 3, 24, 24)
    plain = g.upscale(tiny, images, g.UpscaleOptions(scale=4, grid_filter=32, antiring=0.0))
    clamped = g.upscale(tiny, images, g.UpscaleOptions(scale=4, grid_filter=32, antiring=1.0))
    reference = g.resize(images, (96, 96)).clamp(0, 1) * 2 - 1
    with torch.inference_mode():
        restore = g.guided(tiny, g.Guidance())
        expected = ((antiringed(grid_filtered(restore, 32), 1.0, 9)(reference) + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(clamped, expected, atol=1e-5, rtol=0)
    lo, hi = local_range(reference, 9)
    assert ((clamped * 2 - 1) >= lo - 1e-5).all() and ((clamped * 2 - 1) <= hi + 1e-5).all()
    assert (clamped - plain).abs().max() > 1e-3


def test_the_artifact_filters_are_on_by_default_and_plain_turns_them_off(tiny):
    defaults, plain = g.UpscaleOptions(), g.UpscaleOptions(**g.PLAIN)
    assert (defaults.grid_filter, defaults.antiring) == (64, 0.5)
    assert (plain.grid_filter, plain.antiring) == (0, 0.0)
    images = torch.rand(1, 3, 24, 24)
    reference = g.resize(images, (96, 96)).clamp(0, 1) * 2 - 1
    with torch.inference_mode():
        restore = g.guided(tiny, g.Guidance())
        raw = ((restore(reference) + 1) / 2).clamp(0, 1)
        filtered = ((antiringed(grid_filtered(restore, 64), 0.5, 9)(reference) + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(g.upscale(tiny, images, plain), raw, atol=1e-5, rtol=0)
    torch.testing.assert_close(g.upscale(tiny, images), filtered, atol=1e-5, rtol=0)
