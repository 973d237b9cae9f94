"""The inference API: sizes, self-ensemble, CFG/PadCFG, tiling, RGBA, colour fix, callbacks."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import make_tiny
from torch import nn

import gendr_pix as g
from gendr_pix.ensemble import ENSEMBLE_OFFSETS, offset_pads
from gendr_pix.guidance import Guidance, guided


def run(model, images, **options):
    """The plain pass (artifact filters off) unless `options` say otherwise: these tests check the
    model passes' own arithmetic; the filters have their own tests."""
    return g.upscale(model, images, g.UpscaleOptions(**{**g.PLAIN, **options}))


@pytest.mark.parametrize("hw", [(1, 1), (7, 13), (513, 257)])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_exact_output_sizes(tiny, hw, scale):
    h, w = hw
    out = run(tiny, torch.rand(1, 3, h, w), scale=scale)
    assert out.shape == (1, 3, h * scale, w * scale)
    assert out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1


def test_fractional_scales_round_half_up(tiny):
    assert run(tiny, torch.rand(1, 3, 5, 3), scale=1.5).shape[-2:] == (8, 5)  # 7.5 -> 8, 4.5 -> 5
    assert g.output_size(1, 1, 1.0) == (1, 1)


def _reference_input(images, scale):
    h, w = images.shape[-2:]
    return g.resize(images, g.output_size(h, w, scale)).clamp(0, 1) * 2 - 1


def _finish(y):
    return ((y + 1) / 2).clamp(0, 1)


@pytest.mark.parametrize("k", [2, 4, 8])
def test_ensemble_is_the_mean_over_grid_shifts(tiny, k):
    images = torch.rand(2, 3, 9, 11)
    x = _reference_input(images, 4)
    with torch.no_grad():
        shifted = []
        for dy, dx in ENSEMBLE_OFFSETS[k]:
            pads = offset_pads(dy, dx)  # pad p before, 8 - p after
            assert pads == (dx, 8 - dx, dy, 8 - dy)
            shifted.append(g.crop(tiny(g.reflect_pad(x, pads), tiny.positive), pads))
        expected = _finish(torch.stack(shifted).mean(0))
    torch.testing.assert_close(run(tiny, images, scale=4, ensemble=k), expected, atol=1e-6, rtol=0)


def test_ensemble_offsets_cancel_the_intended_grid_frequencies():
    for k, offsets in ENSEMBLE_OFFSETS.items():
        kept = 0
        for ky in range(8):
            for kx in range(8):
                phase = np.mean([np.exp(2j * np.pi * (ky * dy + kx * dx) / 8) for dy, dx in offsets])
                kept += abs(phase) > 1e-9
        assert kept == 64 // k


@pytest.mark.parametrize("w", [1.0, 2.5, 0.3])
def test_cfg_is_neg_plus_w_times_difference(tiny, w):
    images = torch.rand(1, 3, 10, 6)
    x = _reference_input(images, 3)
    with torch.no_grad():
        pos, neg = tiny(x, tiny.positive), tiny(x, tiny.negative)
        expected = _finish(neg + w * (pos - neg))
    got = run(tiny, images, scale=3, guidance=g.Guidance(scale=w))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_guidance_changes_the_output(tiny):
    images = torch.rand(1, 3, 10, 6)
    assert not torch.allclose(run(tiny, images, guidance=g.Guidance(scale=1.0)),
                              run(tiny, images, guidance=g.Guidance(scale=3.0)))


@pytest.mark.parametrize("w", [1.0, 1.7])
def test_padcfg_is_the_papers_two_branch_formula(tiny, w):
    images = torch.rand(1, 3, 12, 8)
    x = _reference_input(images, 4)
    with torch.no_grad():
        a = g.crop(tiny(F.pad(x, (4, 4, 4, 4), mode="reflect"), tiny.positive), (4, 4, 4, 4))
        b = g.crop(tiny(F.pad(x, (3, 5, 3, 5), mode="reflect"), tiny.negative), (3, 5, 3, 5))
        expected = _finish(w * a + (1 - w) * b)
    got = run(tiny, images, scale=4, guidance=g.Guidance(scale=w, mode="padcfg"))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_custom_contexts_replace_the_stored_embeddings(tiny):
    images = torch.rand(1, 3, 8, 8)
    ctx = torch.randn(1, 3, tiny.config.unet.context_dim)
    x = _reference_input(images, 4)
    with torch.no_grad():
        expected = _finish(tiny(x, ctx))
    out = g.upscale(tiny, images, g.UpscaleOptions(**g.PLAIN), positive=ctx)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"positive embedding must be \[1, tokens, 32\]"):
        g.upscale(tiny, images, positive=torch.randn(1, 3, 7))


def test_a_context_on_another_device_follows_the_model(tiny):
    # ComfyUI conditioning and Python callers hand over CPU float32 tensors while the model sits on a
    # GPU; the meta device stands in for the GPU (mixing devices raises there as on CUDA).
    model = tiny.to("meta")
    y = model(torch.zeros(1, 3, 16, 16, device="meta"), torch.randn(1, 3, model.config.unet.context_dim))
    assert y.device.type == "meta" and y.shape == (1, 3, 16, 16)
    x = torch.zeros(1, 3, 16, 16, device="meta")
    for mode in ("cfg", "padcfg"):
        for fuse in (False, True):  # 3 tokens against the stored 77: never fused into one batch
            restore = guided(model, Guidance(scale=2.0, mode=mode), positive=torch.randn(1, 3, 32), fuse=fuse)
            assert restore(x).device.type == "meta"


def test_fused_guidance_equals_two_calls_even_with_prompts_of_other_lengths(tiny):
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    for positive in (None, torch.randn(1, 77, 32), torch.randn(1, 5, 32)):
        for mode in ("cfg", "padcfg"):
            with torch.no_grad():
                a, b = (guided(tiny, Guidance(scale=2.0, mode=mode), positive, fuse=f)(x) for f in (True, False))
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


class LocalModel(nn.Module):
    """A pixel-space model with a finite receptive field (GroupNorm and attention make the real UNet
    global, so no tiling can match it exactly): unshuffle, two 3x3 convs on the grid, shuffle."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.config = g.ModelConfig(unet=g.UNET_PRESETS["tiny"])
        self.net = nn.Sequential(nn.Conv2d(192, 64, 3, padding=1), nn.Tanh(), nn.Conv2d(64, 192, 3, padding=1))
        self.positive = nn.Parameter(torch.zeros(1, 1, 32))
        self.negative = nn.Parameter(torch.zeros(1, 1, 32))
        self.receptive_radius = 8 * 3  # two 3x3 convs on 8x8 cells: 2 cells + the cell itself

    device = property(lambda self: self.positive.device)
    dtype = property(lambda self: self.positive.dtype)
    memory_format = torch.contiguous_format

    def forward(self, x, context):
        pads = (0, -x.shape[-1] % 16, 0, -x.shape[-2] % 16)
        y = F.pixel_shuffle(self.net(F.pixel_unshuffle(g.reflect_pad(x, pads), 8)), 8)
        return x + 0.1 * g.crop(y, pads)


def test_tiled_matches_untiled_when_overlap_covers_the_receptive_field():
    model = LocalModel().eval()
    images = torch.rand(1, 3, 150, 110)
    overlap = 4 * model.receptive_radius  # zero weight within overlap/4 of an inner tile edge
    whole = run(model, images, scale=4)
    calls = []
    tiled = g.upscale(model, images, g.UpscaleOptions(scale=4, tile=256, tile_overlap=overlap, **g.PLAIN),
                      progress=lambda done, total, preview: calls.append((done, total)))
    assert len(calls) > 4  # really tiled
    assert calls[-1][0] == calls[-1][1]
    assert (tiled - whole).abs().max() < 1e-3


def test_the_preview_is_the_first_finished_image_only(tiny):
    images = torch.rand(3, 3, 8, 8)
    previews = []
    options = g.UpscaleOptions(batch_size=3, **g.PLAIN)
    out = g.upscale(tiny, images, options, progress=lambda d, t, p: previews.append(p))
    previews = [p for p in previews if p is not None]  # steps inside the pass come without one
    assert [tuple(p.shape) for p in previews] == [(1, 3, 32, 32)]
    torch.testing.assert_close(previews[0], out[:1], atol=1e-6, rtol=0)


def test_tiling_with_the_real_model_has_no_visible_seams(tiny):
    images = torch.rand(1, 3, 40, 40)
    whole = run(tiny, images, scale=4)
    tiled = run(tiny, images, scale=4, tile=96, tile_overlap=32)
    # GroupNorm statistics differ per tile, so only closeness is expected here, not equality.
    assert (tiled - whole).abs().mean() < 0.1


def test_tile_plan_covers_the_image_aligned_and_overlapping():
    from gendr_pix.tiling import plan_spans

    for n in [1, 63, 64, 65, 200, 1000, 1031]:
        spans = plan_spans(n, tile=256, overlap=64, align=64)
        assert spans[0].start == 0 and spans[-1].end == n
        for a, b in zip(spans, spans[1:]):
            assert b.start % 64 == 0 and a.end - b.start >= 64 and b.start > a.start
        assert all(s.end - s.start <= 256 + 63 for s in spans)


def test_rgba_keeps_its_alpha(tiny):
    images = torch.rand(2, 4, 9, 7)
    images[0, 3] = 1.0
    images[1, 3, :, :3] = 0.0
    out = run(tiny, images, scale=4)
    assert out.shape == (2, 4, 36, 28)
    expected_alpha = g.resize(images[:, 3:], (36, 28)).clamp(0, 1)
    torch.testing.assert_close(out[:, 3:], expected_alpha, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[:, :3], run(tiny, images[:, :3], scale=4))
    assert torch.all(out[0, 3] == 1.0)  # opaque stays exactly opaque
    assert torch.all(out[1, 3, :, :4] == 0.0)  # transparent stays exactly transparent


def test_nhwc_layout_equals_nchw(tiny):
    images = torch.rand(3, 3, 6, 5)
    nchw = run(tiny, images, scale=2)
    nhwc = g.upscale(tiny, images.permute(0, 2, 3, 1).contiguous(), g.UpscaleOptions(scale=2, **g.PLAIN), layout="NHWC")
    assert nhwc.shape == (3, 12, 10, 3)
    torch.testing.assert_close(nhwc.permute(0, 3, 1, 2), nchw)


def test_batch_chunks_give_the_same_result(tiny):
    images = torch.rand(5, 3, 8, 8)
    one = run(tiny, images, batch_size=1)
    three = run(tiny, images, batch_size=3)
    torch.testing.assert_close(one, three, atol=1e-5, rtol=0)


def test_deterministic(tiny):
    images = torch.rand(1, 3, 16, 12)
    opts = dict(ensemble=2, guidance=g.Guidance(scale=2.0, mode="padcfg"), tile=64, tile_overlap=32)
    assert torch.equal(run(tiny, images, **opts), run(tiny, images, **opts))


def test_color_fix_keeps_the_input_colours(tiny):
    images = torch.rand(1, 3, 32, 32) * 0.3 + 0.5
    reference = g.resize(images, (128, 128)).clamp(0, 1)
    for mode in ["wavelet", "adain"]:
        out = run(tiny, images, color_fix=mode)
        plain = run(tiny, images)
        err_fixed = (out.mean((-2, -1)) - reference.mean((-2, -1))).abs().max()
        err_plain = (plain.mean((-2, -1)) - reference.mean((-2, -1))).abs().max()
        assert err_fixed < 0.02 < err_plain, (mode, err_fixed, err_plain)


def test_grey_images_stay_grey_and_colour_ones_are_untouched(tiny):
    grey = torch.rand(1, 1, 24, 20).expand(1, 3, 24, 20)
    colour = torch.rand(1, 3, 24, 20)
    raw = run(tiny, grey)
    assert (raw[:, 0] - raw[:, 1]).abs().max() == 0 and (raw[:, 1] - raw[:, 2]).abs().max() == 0
    # The grey value is the luma of what the model made of it (the tiny model does tint it).
    with torch.inference_mode():
        tinted = ((tiny(_reference_input(grey, 4), tiny.positive) + 1) / 2)
    assert (tinted.amax(1) - tinted.amin(1)).max() > 1e-3
    luma = (tinted * torch.tensor(g.LUMA).view(1, 3, 1, 1)).sum(1).clamp(0, 1)
    torch.testing.assert_close(raw[:, 0], luma, atol=1e-5, rtol=0)
    both = run(tiny, torch.cat([colour, grey]), batch_size=2)
    torch.testing.assert_close(both[:1], run(tiny, colour), atol=1e-5, rtol=0)  # colour: not made grey
    torch.testing.assert_close(both[1:], raw, atol=1e-5, rtol=0)
    assert (both[:1].amax(1) - both[:1].amin(1)).max() > 0.1
    # Half an 8-bit step of colour still counts as grey; more does not.
    assert g.is_grey(grey + torch.tensor([0.0, 0.4 / 255, 0.0]).view(1, 3, 1, 1)).item()
    assert not g.is_grey(grey + torch.tensor([0.0, 1.0 / 255, 0.0]).view(1, 3, 1, 1)).item()


def test_wavelet_split_is_exact():
    x = torch.rand(2, 3, 37, 20)
    from gendr_pix.colorfix import wavelet_split

    high, low = wavelet_split(x)
    torch.testing.assert_close(high + low, x)


def test_stop_callback_really_stops(tiny):
    images = torch.rand(3, 3, 20, 20)
    calls = {"model": 0, "checks": 0}
    original = tiny.forward

    def counting_forward(*args, **kwargs):
        calls["model"] += 1
        return original(*args, **kwargs)

    tiny.forward = counting_forward

    def stop_after_two_checks():
        calls["checks"] += 1
        return calls["checks"] > 2

    with pytest.raises(g.Interrupted):
        run_opts = g.UpscaleOptions(tile=64, tile_overlap=32)
        g.upscale(tiny, images, run_opts, should_stop=stop_after_two_checks)
    assert calls["model"] == 1  # chunk check, tile 1 check -> model call, its first block -> stop
    assert calls["checks"] == 3


def test_a_raising_stop_callback_propagates_unchanged(tiny):
    class HostInterrupt(Exception):
        pass

    def interrupt():
        raise HostInterrupt()

    with pytest.raises(HostInterrupt):
        g.upscale(tiny, torch.rand(1, 3, 8, 8), should_stop=interrupt)


def test_out_of_memory_halves_the_tile(tiny, monkeypatch):
    images = torch.rand(1, 3, 64, 64)
    original = tiny.forward
    sizes = []

    def picky_forward(x, context):
        sizes.append(x.shape[-1])
        if x.shape[-1] > 160:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(x, context)

    tiny.forward = picky_forward
    out = g.upscale(tiny, images, g.UpscaleOptions(scale=4, tile=0, tile_overlap=32, **g.PLAIN))
    assert sizes[0] == 256 and max(sizes[1:]) <= 160
    tiny.forward = original
    torch.testing.assert_close(out, run(tiny, images, scale=4, tile=128, tile_overlap=32))


def test_out_of_memory_fallback_keeps_a_stride_for_large_overlaps(tiny, monkeypatch):
    # tiny's grid is 16 px: halving 256 to min_tile 128 would leave 128 - 120 < 16 px of stride;
    # the fallback stops at 144 instead of failing with a ValueError.
    original = tiny.forward

    def picky_forward(x, context):
        if x.shape[-1] > 200:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(x, context)

    monkeypatch.setattr(tiny, "forward", picky_forward)
    images = torch.rand(1, 3, 64, 64)
    out = g.upscale(tiny, images, g.UpscaleOptions(scale=4, tile_overlap=120, **g.PLAIN))
    monkeypatch.undo()
    torch.testing.assert_close(out, run(tiny, images, scale=4, tile=144, tile_overlap=120))


def test_an_explicit_tile_too_small_for_its_overlap_is_named(tiny):
    with pytest.raises(ValueError, match="tile 128 is too small for tile_overlap 120: .* 136 px \\(or tile 0\\)"):
        g.upscale(tiny, torch.rand(1, 3, 64, 64), g.UpscaleOptions(tile=128, tile_overlap=120))
    # a tile that covers the whole output needs no stride
    assert g.upscale(tiny, torch.rand(1, 3, 32, 32), g.UpscaleOptions(tile=128, tile_overlap=120)).shape[-1] == 128


def test_device_and_dtype_are_restored(tiny):
    out = g.upscale(tiny, torch.rand(1, 3, 8, 8), dtype=torch.bfloat16)
    assert tiny.dtype == torch.float32 and out.dtype == torch.float32
    ref = g.upscale(tiny, torch.rand(1, 3, 8, 8))
    assert ref.shape == out.shape


@pytest.mark.parametrize("bad, message", [
    (torch.rand(3, 8, 8), "4-D"),
    (torch.rand(1, 2, 8, 8), "3 \\(RGB\\) or 4 \\(RGBA\\)"),
    (torch.randint(0, 255, (1, 3, 8, 8)), "floating point"),
    (torch.rand(0, 3, 8, 8), "non-empty"),
    (torch.rand(1, 3, 8, 8).index_put_((torch.tensor([0]),) * 4, torch.tensor(float("nan"))), "1 NaN or infinite"),
    (torch.full((1, 3, 8, 8), float("inf")), "192 NaN or infinite values \\(of 192, shape \\(1, 3, 8, 8\\)"),
])
def test_bad_images_are_named(tiny, bad, message):
    with pytest.raises(ValueError, match=message):
        g.upscale(tiny, bad)


@pytest.mark.parametrize("options, message", [
    (dict(scale=9), "scale must be in \\[1, 8\\]"),
    (dict(ensemble=3), "ensemble must be one of"),
    (dict(tile=64, tile_overlap=64), "must be larger than tile_overlap"),
    (dict(color_fix="histogram"), "color_fix must be one of"),
])
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        g.UpscaleOptions(**options)


def test_reflect_pad_matches_numpy_for_any_size():
    for h, w, pads in [(1, 1, (3, 5, 3, 5)), (2, 3, (7, 9, 4, 4)), (5, 4, (0, 64, 0, 60)), (9, 9, (4, 4, 4, 4))]:
        x = torch.rand(1, 1, h, w)
        got = g.reflect_pad(x, pads)
        left, right, top, bottom = pads
        mode = "edge" if min(h, w) == 1 else "reflect"
        expected = np.pad(x[0, 0].numpy(), ((top, bottom), (left, right)), mode=mode)
        np.testing.assert_allclose(got[0, 0].numpy(), expected)


def test_model_handles_any_size_directly():
    model = make_tiny(seed=3)
    for h, w in [(1, 1), (3, 17), (16, 16)]:
        with torch.no_grad():
            assert model(torch.zeros(2, 3, h, w)).shape == (2, 3, h, w)
