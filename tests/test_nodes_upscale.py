"""Logic behind the Upscale node, without ComfyUI: real tensors through the core, bad inputs included."""

from __future__ import annotations

import sys

import pytest
import torch
from PIL import Image

import gendr_pix
from nodes.model_value import PixModel, load_network, with_ensemble, with_grid_filter, with_guidance
from nodes.upscale_run import (
    ProgressRelay,
    UpscaleRequest,
    as_rgb_or_rgba,
    check_output_fits,
    memory_required,
    options_for,
    to_preview,
    upscale_images,
)


@pytest.fixture()
def pix(tiny_model_file) -> PixModel:
    return PixModel(network=load_network(tiny_model_file, torch.float32), source=str(tiny_model_file))


def image(b=1, h=12, w=20, c=3, seed=0) -> torch.Tensor:
    """A ComfyUI IMAGE: [B, H, W, C] float32 in [0, 1]."""
    torch.manual_seed(seed)
    return torch.rand(b, h, w, c)


def test_rgb_batch_upscales_to_the_scaled_size_in_comfy_layout(pix):
    out = upscale_images(pix, image(b=2), UpscaleRequest(scale=4.0))
    assert out.shape == (2, 48, 80, 3) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert 0.0 <= out.min() and out.max() <= 1.0 and out.std() > 0.01


def test_result_equals_the_core_called_directly(pix):
    model = with_grid_filter(with_guidance(with_ensemble(pix, 2), 1.7, "padcfg"), 32)
    x = image()
    ours = upscale_images(model, x, UpscaleRequest(scale=2.0, color_fix="wavelet"))
    options = gendr_pix.UpscaleOptions(scale=2.0, ensemble=2, guidance=gendr_pix.Guidance(scale=1.7, mode="padcfg"),
                                       grid_filter=32, color_fix="wavelet")
    core = gendr_pix.upscale(pix.network, x.permute(0, 3, 1, 2), options).permute(0, 2, 3, 1)
    torch.testing.assert_close(ours, core)


def test_ensemble_and_guidance_change_the_result(pix):
    x = image()
    plain = upscale_images(pix, x, UpscaleRequest(scale=2.0))
    assert not torch.allclose(plain, upscale_images(with_ensemble(pix, 4), x, UpscaleRequest(scale=2.0)))
    assert not torch.allclose(plain, upscale_images(with_guidance(pix, 2.0, "cfg"), x, UpscaleRequest(scale=2.0)))
    assert not torch.allclose(plain, upscale_images(with_grid_filter(pix, 16), x, UpscaleRequest(scale=2.0)))


def test_rgba_keeps_a_resized_alpha(pix):
    x = image(c=4)
    x[..., 3] = 0.0
    x[:, :6, :, 3] = 1.0  # opaque top half
    out = upscale_images(pix, x, UpscaleRequest(scale=2.0))
    assert out.shape == (1, 24, 40, 4)
    alpha = out[..., 3]
    assert alpha[:, :10].min() > 0.95 and alpha[:, 14:].max() < 0.05
    rgb_only = upscale_images(pix, x[..., :3].contiguous(), UpscaleRequest(scale=2.0))
    torch.testing.assert_close(out[..., :3], rgb_only)


def test_grey_images_are_upscaled_as_rgb(pix):
    out = upscale_images(pix, image(c=1), UpscaleRequest(scale=2.0))
    assert out.shape == (1, 24, 40, 3)


def free_memory_is(monkeypatch, nbytes):
    """Pretend the device has `nbytes` free (None: unknown) for the core's memory planner."""
    # By object: the name gendr_pix.upscale is the function, its module lives in sys.modules.
    monkeypatch.setattr(sys.modules["gendr_pix.upscale"], "free_memory", lambda device: nbytes)


def test_frames_per_call_does_not_change_the_result(pix, monkeypatch):
    """Chunking a batch of frames is a memory decision only."""
    frames = image(b=3)
    free_memory_is(monkeypatch, None)  # unknown: one frame per call
    one_by_one = upscale_images(pix, frames, UpscaleRequest(scale=2.0))
    free_memory_is(monkeypatch, 10**12)  # plenty: all three in one call
    all_at_once = upscale_images(pix, frames, UpscaleRequest(scale=2.0))
    torch.testing.assert_close(one_by_one, all_at_once, rtol=1e-4, atol=1e-5)


def test_auto_tiles_when_a_frame_does_not_fit_and_reports_each_tile(pix, monkeypatch):
    calls = []
    whole = memory_required(pix, image(h=64, w=80), UpscaleRequest(scale=4.0))
    free_memory_is(monkeypatch, 512 * 2**20 + whole // 2)  # the core keeps 512 MB in reserve
    out = upscale_images(pix, image(h=64, w=80), UpscaleRequest(scale=4.0, tile_overlap=16),
                         progress=lambda done, total, piece: calls.append((done, total, piece is not None)))
    assert out.shape == (1, 256, 320, 3)
    tiles = [done for done, total, preview in calls if preview]  # each finished tile comes with a preview
    done, total, preview = calls[-1]
    assert len(tiles) > 1 and done == total and preview
    assert [done for done, *_ in calls] == sorted(done for done, *_ in calls)


def test_widgets_become_core_options(pix):
    model = with_grid_filter(with_guidance(with_ensemble(pix, 4), 2.0, "cfg"), 64)
    options = options_for(model, UpscaleRequest(scale=3.0, tile_size=256, tile_overlap=32, color_fix="adain"))
    assert (options.scale, options.tile, options.tile_overlap, options.color_fix) == (3.0, 256, 32, "adain")
    assert options.ensemble == 4 and options.guidance == gendr_pix.Guidance(scale=2.0, mode="cfg")
    assert options.grid_filter == 64
    assert options.batch_size == 0  # frames per call: planned by the core


def test_memory_required_uses_the_tile_when_one_is_set(pix):
    x = image(h=100, w=100)
    whole = memory_required(pix, x, UpscaleRequest(scale=4.0))
    tiled = memory_required(pix, x, UpscaleRequest(scale=4.0, tile_size=128))
    assert 0 < tiled < whole


def test_output_that_cannot_fit_in_ram_is_refused_before_running(pix):
    with pytest.raises(MemoryError, match="needs .* GB of RAM"):
        upscale_images(pix, image(b=4), UpscaleRequest(scale=4.0), available_ram=1000)
    check_output_fits((1, 10, 10, 3), available_ram=None)


@pytest.mark.parametrize(
    ("x", "request_", "match"),
    [
        (torch.rand(12, 20, 3), UpscaleRequest(), "IMAGE"),
        ("an image", UpscaleRequest(), "IMAGE"),
        (torch.rand(1, 12, 20, 2), UpscaleRequest(), "3 \\(RGB\\) or 4 \\(RGBA\\)"),
        ((torch.rand(1, 12, 20, 3) * 255).to(torch.uint8), UpscaleRequest(), "floating point"),
        (torch.rand(0, 12, 20, 3), UpscaleRequest(), "non-empty"),
        (torch.full((1, 12, 20, 3), float("nan")), UpscaleRequest(), "NaN or infinite"),
        (torch.rand(1, 12, 20, 3), UpscaleRequest(scale=0.5), "scale must be in"),
        (torch.rand(1, 12, 20, 3), UpscaleRequest(scale=9.0), "scale must be in"),
        (torch.rand(1, 12, 20, 3), UpscaleRequest(tile_size=64, tile_overlap=64),
         r"^tile_size \(64\) must be larger than tile_overlap \(64\)$"),
        (torch.rand(1, 64, 64, 3), UpscaleRequest(tile_size=128, tile_overlap=120),
         r"^tile_size 128 is too small for tile_overlap 120: .* \(or tile_size 0\)$"),
        (torch.rand(1, 12, 20, 3), UpscaleRequest(color_fix="lab"), "color_fix must be one of"),
    ],
)
def test_bad_inputs_raise_clear_errors(pix, x, request_, match):
    with pytest.raises(ValueError, match=match):
        upscale_images(pix, x, request_)


def test_stop_callback_exception_passes_through_untouched(pix):
    class ComfyInterrupt(Exception):
        pass

    def stop():
        raise ComfyInterrupt()

    with pytest.raises(ComfyInterrupt):
        upscale_images(pix, image(), UpscaleRequest(scale=2.0), should_stop=stop)


def test_cancel_stops_an_untiled_run_inside_its_model_pass(pix):
    class ComfyInterrupt(Exception):
        pass

    steps = []

    def cancel_after_three_blocks():
        if len(steps) >= 3:
            raise ComfyInterrupt()

    with pytest.raises(ComfyInterrupt):
        upscale_images(pix, image(), UpscaleRequest(scale=4.0, tile_size=0), should_stop=cancel_after_three_blocks,
                       progress=lambda done, total, piece: steps.append((done, total, piece)))
    per_pass = pix.network.unet.steps_per_pass
    assert [(d, t) for d, t, _ in steps] == [(1, per_pass), (2, per_pass), (3, per_pass)]  # one whole-image pass
    assert all(piece is None for *_, piece in steps)  # stopped before it finished


def test_nan_weights_are_a_node_error_naming_the_file(pix):
    with torch.no_grad():
        pix.network.unet.mid_block.resnets[0].conv1.weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(gendr_pix.NonFiniteOutputError, match=f"unet.mid_block.resnets.0.conv1.weight.*{pix.source}"):
        upscale_images(pix, image(), UpscaleRequest())


def test_half_precision_overflow_names_the_loader_precision(tiny_model_file):
    network = load_network(tiny_model_file, torch.float16)
    with torch.no_grad():
        network.unet.conv_out.weight.fill_(1000.0)  # finite, but float16 activations overflow
    with pytest.raises(gendr_pix.NonFiniteOutputError, match=r"\(precision fp32 on the GenDR-Pix Model Loader\)"):
        upscale_images(PixModel(network=network, source=str(tiny_model_file)), image(), UpscaleRequest())


def test_progress_relay_throttles_steps_but_sends_previews_and_the_end():
    now = [0.0]
    sent = []
    relay = ProgressRelay(lambda d, t, img: sent.append((d, img is not None)), preview_size=8, min_interval=100,
                          step_interval=10, clock=lambda: now[0])
    for step in range(1, 40):
        now[0] = step  # a block every time unit
        relay(step, 40, None)
    relay(40, 40, torch.rand(1, 3, 8, 8))
    assert [d for d, _ in sent] == [1, 11, 21, 31, 40] and sent[-1][1]


def test_the_final_preview_is_the_whole_output_at_its_own_size():
    sent = []
    relay = ProgressRelay(lambda d, t, img: sent.append(img), preview_size=512)
    relay.finish(torch.rand(2, 300, 448, 4))
    relay.finish(torch.rand(1, 3000, 1000, 3))
    assert [img.size for img in sent] == [(448, 300), (171, 512)]


def test_progress_relay_throttles_previews_but_sends_the_last():
    now = [0.0]
    sent = []
    relay = ProgressRelay(lambda d, t, img: sent.append((d, t, img)), preview_size=8, min_interval=1.0,
                          step_interval=0, clock=lambda: now[0])
    piece = torch.rand(1, 3, 32, 16)
    relay(1, 4, piece)
    now[0] = 0.5
    relay(2, 4, piece)
    relay(3, 4, None)
    now[0] = 0.6
    relay(4, 4, piece)
    assert [d for d, _, _ in sent] == [1, 2, 3, 4]
    assert [img is not None for _, _, img in sent] == [True, False, False, True]
    assert sent[0][2].size == (4, 8)


def test_preview_is_a_small_rgb_image_of_the_first_item():
    piece = torch.zeros(2, 3, 600, 1200)
    piece[0, 0] = 1.0  # first item red
    preview = to_preview(piece, 512)
    assert isinstance(preview, Image.Image) and preview.size == (512, 256) and preview.mode == "RGB"
    assert preview.getpixel((10, 10)) == (255, 0, 0)
    assert to_preview(torch.rand(1, 3, 20, 30), 512).size == (30, 20)


def test_as_rgb_or_rgba_leaves_rgb_alone():
    x = image()
    assert as_rgb_or_rgba(x) is x
