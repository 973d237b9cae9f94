"""The device paths on a real GPU: half precision, fused PadCFG, automatic tiles from free memory, the
halving after an out-of-memory error, the memory estimate, and model placement.

Marked `cuda`: skipped without a CUDA device (tests/conftest.py). `python -m gendr_pix.bench.gpu_check`
runs them first on a GPU machine; `python -m pytest -m cuda` runs them alone. The checks themselves
live in `gendr_pix.bench.gpu_checks` (their thresholds are explained there); tests/test_gpu_check.py
runs the same checks on the CPU with emulated memory limits.
"""

from __future__ import annotations

import pytest
import torch

import gendr_pix as g
from gendr_pix.bench import gpu_checks as checks
from gendr_pix.bench.gpu_child import photo
from gendr_pix.bench.gpu_steps import PHOTO_FALLBACK, Setup

pytestmark = pytest.mark.cuda
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def model() -> g.GenDRPix:
    return g.load_default_model()


def crop(edge: int) -> torch.Tensor:
    """A crop of the example photo the repo ships (a real photo; resized up when it is smaller)."""
    return photo(Setup(device="cuda", tiny=False, photo=PHOTO_FALLBACK), edge)


def failed_rows(result: dict) -> dict:
    rows = result["rows"]
    return {k: row for k, row in (rows.items() if isinstance(rows, dict) else enumerate(rows)) if not row["passed"]}


def test_half_precision_matches_fp32_and_the_gpu_matches_the_cpu(model):
    result = checks.precision(model, crop(128), CUDA, cpu_crop=64)
    assert result["passed"], (failed_rows(result), result["summary"])
    assert model.device.type == "cpu" and model.dtype == torch.float32


def test_fused_padcfg_equals_two_calls_and_the_planner_fuses(model):
    result = checks.guidance_fusion(model, [crop(64), crop(256)], CUDA, torch.bfloat16, repeats=2)
    assert result["passed"], result["summary"]


def test_automatic_tiles_fit_in_the_free_memory(model):
    result = checks.auto_tiles(model, crop(256), CUDA, torch.bfloat16)
    assert result["tiles"] > 1 and not result["halvings"], result["summary"]
    assert result["passed"], result["summary"]


def test_out_of_memory_halves_the_tile_and_matches_an_uncapped_run(model):
    result = checks.out_of_memory_halving(model, crop(256), CUDA, torch.bfloat16)
    assert result["halvings"], result["summary"]
    assert result["passed"], result["summary"]
    torch.empty(4 * result["cap_bytes"], dtype=torch.uint8, device=CUDA)  # the cap is lifted again


def test_memory_estimate_bounds_the_allocator_peak(model):
    # At 4096 the estimate (0.4 GB bf16, 0.8 GB fp32) is no longer hidden by the planner's 512 MB reserve.
    cases = [("model", d, e, e) for d in ("bf16", "fp32") for e in (1024, 4096)]
    result = checks.memory_estimate({"model": model}, cases, CUDA)
    assert result["passed"], (failed_rows(result), result["summary"])


def test_core_placement_runs_on_the_gpu_and_puts_the_model_back(model):
    seen = []
    handle = model.register_forward_pre_hook(lambda m, args: seen.append((args[0].device.type, args[0].dtype)))
    try:
        out = g.upscale(model, crop(32), device="cuda", dtype=torch.bfloat16)
        with pytest.raises(g.Interrupted):
            g.upscale(model, crop(32), device="cuda", dtype=torch.float16, should_stop=lambda: True)
    finally:
        handle.remove()
    assert seen == [("cuda", torch.bfloat16)]
    assert out.device.type == "cpu" and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert model.device.type == "cpu" and model.dtype == torch.float32  # also after the interrupted call


def test_comfyui_images_on_the_gpu_in_nhwc(model):
    # ComfyUI with --gpu-only hands IMAGE [B, H, W, C] tensors that already live on the GPU.
    images = crop(32).permute(0, 2, 3, 1).repeat(2, 1, 1, 1).cuda()
    with checks.on_device(model, CUDA, torch.bfloat16):
        out = g.upscale(model, images, layout="NHWC")
    assert out.shape == (2, 128, 128, 3) and out.device.type == "cpu"
    torch.testing.assert_close(out[0], out[1])
