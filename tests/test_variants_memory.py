"""The memory tracker, its meta-device simulation, and the tile planner that upscale() uses."""

from __future__ import annotations

import importlib
import sys

import pytest
import torch

from gendr_pix import UNET_PRESETS, GenDRPix, ModelConfig, UpscaleOptions, upscale
from gendr_pix.memory import PeakTensorMemory, module_bytes, plan_tile, simulate_peak

upscale_module = sys.modules["gendr_pix.upscale"]  # the package re-exports the function under that name


def test_tracker_counts_live_storages_once():
    x = torch.ones(10)  # made before tracking: never counted
    with torch.inference_mode(), PeakTensorMemory(baseline=100) as m:
        a = torch.empty(1000)  # 4000 bytes
        view = a[:10]  # a view: same storage
        a.add_(1)  # in place: same storage
        b = torch.empty(2000)  # +8000 -> 12000 live
        del a, view
        c = torch.empty(500)  # a freed: 8000 + 2000
        y = x.view(2, 5)  # view of an untracked tensor
        del b, c, y
    assert m.peak == 100 + 12000
    assert m.current == 100


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_meta_simulation_equals_real_cpu_peak(preset, dtype):
    # The estimator runs the same forward on the meta device; on the CPU (flash attention, whose
    # output is the only allocation) it must see exactly the tensors the real run allocates.
    torch.manual_seed(0)
    model = GenDRPix(ModelConfig(unet=UNET_PRESETS[preset])).eval().to(dtype)
    model.unet.set_ff_chunk(16)
    x = (torch.rand(1, 3, 96, 128) * 2 - 1).to(dtype)
    with torch.inference_mode(), PeakTensorMemory() as real:
        model(x)
    with torch.device("meta"):
        twin = GenDRPix(model.config).to(dtype)
    twin.unet.set_ff_chunk(16)
    assert simulate_peak(twin, torch.empty(1, 3, 96, 128, device="meta", dtype=dtype)) == real.peak
    assert module_bytes(model) == module_bytes(twin) == sum(p.numel() * p.element_size() for p in model.parameters())


def test_simulation_grows_with_size_and_chunking_bounds_it():
    with torch.device("meta"):
        model = GenDRPix(ModelConfig(unet=UNET_PRESETS["sd21"])).to(torch.bfloat16)
    x = lambda h, w: torch.empty(1, 3, h, w, device="meta", dtype=torch.bfloat16)
    small, large = simulate_peak(model, x(512, 512)), simulate_peak(model, x(1024, 1024))
    assert 2.0 < large / small < 5.0  # activations grow ~linearly in pixels with fused attention
    chunked = simulate_peak(model, x(2160, 3840))
    model.unet.set_ff_chunk(0)
    whole = simulate_peak(model, x(2160, 3840))
    assert chunked < 0.6 * whole  # the 8x-wide feed-forward activation dominated before chunking
    assert chunked < 1.0e9  # sd21 at 4K, bf16: activations under 1 GB (weights are 1.73 GB)


def test_plan_tile_picks_largest_fitting_multiple():
    per_pixel, align = 1000, 64
    estimate = lambda h, w: per_pixel * h * w
    from gendr_pix.memory import RESERVE, SAFETY

    budget = int(300 * 300 * per_pixel * SAFETY + RESERVE)
    tile = plan_tile(estimate, 2000, 1500, align, 128, budget)
    assert tile == 256  # 256 fits, 320 does not
    assert plan_tile(estimate, 100, 100, align, 128, budget) == 128  # whole image (rounded up) fits
    assert plan_tile(estimate, 2000, 1500, align, 128, None) == 2048  # unknown free memory: whole
    assert plan_tile(estimate, 2000, 1500, align, 128, 1) == 128  # nothing fits: the floor


def test_upscale_auto_tile_follows_free_memory(monkeypatch):
    torch.manual_seed(0)
    model = GenDRPix(ModelConfig(unet=UNET_PRESETS["tiny"])).eval()
    images = torch.rand(1, 3, 60, 50)
    calls = []  # one entry per finished tile (the calls with a preview; the others are steps inside a pass)
    progress = lambda done, total, preview: preview is not None and calls.append(total)  # noqa: E731
    whole = upscale(model, images, UpscaleOptions(tile_overlap=32), progress=progress)
    assert len(calls) == 1
    # Pretend only a little memory is free: the planner must tile (and the result stays close).
    from gendr_pix.memory import RESERVE, SAFETY

    with torch.device("meta"):
        twin = GenDRPix(model.config)
    whole_peak = simulate_peak(twin, torch.empty(1, 3, 240, 208, device="meta"))  # padded to the multiple 16
    budget = 3 * 240 * 200 * 3 * 4 + RESERVE + int(0.5 * whole_peak * SAFETY)  # half of what it needs
    monkeypatch.setattr(upscale_module, "free_memory", lambda device: budget)
    calls.clear()
    tiled = upscale(model, images, UpscaleOptions(tile_overlap=32, min_tile=64), progress=progress)
    assert len(calls) > 1
    assert tiled.shape == whole.shape == (1, 3, 240, 200)
    assert (tiled - whole).abs().mean().item() < 0.05


def test_auto_batch_takes_as_many_frames_as_fit(monkeypatch):
    from conftest import make_tiny

    up = importlib.import_module("gendr_pix.upscale")  # the module; gendr_pix.upscale is the function

    model = make_tiny()
    frames = torch.rand(5, 3, 16, 16)
    sizes = []
    original = model.forward
    model.forward = lambda x, ctx: (sizes.append(x.shape[0]), original(x, ctx))[1]
    monkeypatch.setattr(up, "free_memory", lambda device: 10**12)
    plenty = upscale(model, frames)
    assert sizes == [5]
    sizes.clear()
    monkeypatch.setattr(up, "free_memory", lambda device: None)
    unknown = upscale(model, frames)
    assert sizes == [1] * 5
    torch.testing.assert_close(plenty, unknown, rtol=1e-4, atol=1e-5)
    sizes.clear()
    def need(n):  # what the planner checks for n whole 64x64 frames: activations (+25 %), images, reserve
        peak = up._simulated_peak(model.config, model.dtype, model.memory_format, n, UpscaleOptions(), False, 64, 64)
        return int(peak * 1.25) + 512 * 2**20 + 3 * n * 3 * 64 * 64 * 4

    assert need(2) < need(4)
    monkeypatch.setattr(up, "free_memory", lambda device: need(2) + 1)
    upscale(model, frames)
    assert sizes == [2, 2, 1]  # halved from 5 until a batch fits
