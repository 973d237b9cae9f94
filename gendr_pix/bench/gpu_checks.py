"""The device checks behind `gpu_check`: each runs the core's public path on one device and returns a
JSON-able dict of what it measured, with `passed` and a one-line `summary`.

They are written for CUDA (bf16/fp16, fused PadCFG, tiles from free memory, halving after an
out-of-memory error, the memory estimate against the allocator) and also run on the CPU at tiny
sizes, where the memory cap and the free-memory limit are emulated (`memory_cap`, `free_memory_limit`),
so the logic of every check is tested without a GPU (tests/test_gpu_check.py).

Thresholds, and why (outputs in [0, 1]; PSNR over RGB in float, not quantised):
- bf16 vs fp32 >= 45 dB, fp16 and TF32 vs fp32 >= 50 dB, max |diff| <= 8/255. The bundled model on a
  photo crop on the CPU gives 62 dB (bf16, max 0.004) and 79 dB (fp16, max 0.0006); 45 dB is an RMS
  error of 0.6 %, about 1.4 levels of 8 bits, invisible. The margin covers other kernels (cuDNN, flash
  attention) and larger images; the defects these checks exist for (fp16 overflow, a path that drops to
  the wrong dtype, broken attention) give NaN/inf or < 30 dB.
- GPU fp32 with TF32 off vs the CPU: >= 70 dB, max |diff| <= 1e-3. Same arithmetic in another order
  differs by ~1e-6; anything visible means the device path computes something else.
- Fused PadCFG vs two calls: >= 45 dB (the same bf16 math in one batch of two; kernels may differ).
- After an out-of-memory halving vs an uncapped run with the tile it ended at: max |diff| <= 2/255
  (the same tiles; only the kernels chosen under a memory cap may differ).
- Automatic tiles vs the whole image: >= 35 dB. Tiling is not exact for a model with attention over
  the whole image; the bundled model on a photo (CPU, bf16) gives 44-47 dB for 2048 px outputs in 704-1024 px
  tiles and 43.7 dB for 256 px in 128 px tiles, overlap 64. Visible seams would be far below 35 dB.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from ..accel import DTYPES, use_channels_last
from ..config import UNET_PRESETS, ModelConfig
from ..guidance import Guidance, guided
from ..memory import RESERVE, SAFETY, PeakTensorMemory, free_memory
from ..model import GenDRPix
from ..upscale import PLAIN, UpscaleOptions, estimate_memory, output_size, upscale
from .flops import count_flops
from .measure import time_runs
from .pipelines import Variant, materialize

MIN_PSNR_DB = {"bf16": 45.0, "bf16+cl": 45.0, "fp16": 50.0, "fp32 (TF32)": 50.0}
MAX_ABS_HALF = 8 / 255
DEVICE_FP32_MIN_PSNR_DB, DEVICE_FP32_MAX_ABS = 70.0, 1e-3
FUSE_MIN_PSNR_DB = 45.0
HALVING_MAX_ABS = 2 / 255
TILED_MIN_PSNR_DB = 35.0
HALVING_MESSAGE = "out of memory with %dpx tiles; retrying with %dpx"
"""The warning `upscale._run_with_fallback` logs on each halving; its args are (old tile, new tile)."""


IDENTICAL_DB = 200.0
"""The PSNR reported for identical images (JSON has no infinity)."""


def difference(a: Tensor, b: Tensor) -> dict[str, float]:
    """PSNR (dB, peak 1; IDENTICAL_DB if equal, 0 if `a` has NaN/inf) and max / mean absolute difference
    of two images in [0, 1], and how many values of `a` are not finite."""
    a, b = a.double(), b.double()
    bad = int((~torch.isfinite(a)).sum())
    err = (a - b).abs()
    mse = float(err.pow(2).mean())
    if bad or not math.isfinite(mse):
        psnr = 0.0
    else:
        psnr = IDENTICAL_DB if mse == 0 else min(IDENTICAL_DB, -10 * math.log10(mse))
    err = err.nan_to_num(nan=1.0)
    return {"psnr_db": psnr, "max_abs": float(err.max()), "mean_abs": float(err.mean()), "nonfinite": bad}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_above(fn: Callable[[], Any], device: torch.device) -> tuple[Any, int]:
    """fn()'s result and the peak bytes it allocated on `device` above what was allocated before.
    CUDA: the allocator's own counters; elsewhere the live-tensor tracker (what the planner simulates)."""
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        out = fn()
        sync(device)
        return out, torch.cuda.max_memory_allocated(device) - base
    with PeakTensorMemory(device_type=device.type) as tracker:
        out = fn()
    return out, tracker.peak


@contextlib.contextmanager
def on_device(model: GenDRPix, device: torch.device, dtype: torch.dtype = torch.float32,
              channels_last: bool = False) -> Iterator[GenDRPix]:
    """The model moved (and converted) for a block, then put back where and as it was (contiguous)."""
    before = (model.device, model.dtype)
    model.to(device=device, dtype=dtype)
    if channels_last:
        use_channels_last(model)
    try:
        yield model
    finally:
        model.to(device=before[0], dtype=before[1], memory_format=torch.contiguous_format)
        if device.type == "cuda":
            torch.cuda.empty_cache()


@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """TF32 off for cuDNN convolutions and CUDA matmuls (torch turns it on for convolutions)."""
    conv, mm = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, mm


class HalvingLog(logging.Handler):
    """Collects the tile halvings `upscale()` logs, as (old, new) tile edges."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.halvings: list[tuple[int, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == HALVING_MESSAGE and isinstance(record.args, tuple):
            self.halvings.append((int(record.args[0]), int(record.args[1])))

    @contextlib.contextmanager
    def attached(self) -> Iterator[HalvingLog]:
        logger = logging.getLogger("gendr_pix.upscale")
        logger.addHandler(self)
        try:
            yield self
        finally:
            logger.removeHandler(self)


@contextlib.contextmanager
def memory_cap(model: GenDRPix, device: torch.device, allowed: int, whole_peak: int, whole_pixels: int):
    """Let the next model calls allocate at most `allowed` bytes above what is allocated now.

    CUDA: torch's per-process memory fraction (a real allocator failure). Elsewhere emulated: the model
    raises torch.OutOfMemoryError for inputs above the pixel count that `allowed` buys at the whole
    image's bytes per pixel."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, (torch.cuda.memory_allocated(device) + allowed) / total),
                                                   device)
        try:
            yield
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0, device)
            torch.cuda.empty_cache()
        return
    limit = whole_pixels * allowed / whole_peak

    def refuse(module, args):
        if args[0].shape[-2] * args[0].shape[-1] > limit:
            raise torch.OutOfMemoryError(f"emulated out of memory: {tuple(args[0].shape)} above {limit:.0f} px")

    handle = model.register_forward_pre_hook(refuse)
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def free_memory_limit(device: torch.device, budget: int) -> Iterator[None]:
    """Make only about `budget` bytes free for the next calls. CUDA: a blocker tensor takes the rest, so
    the planner reads it from `torch.cuda.mem_get_info` and the allocator really fails above it.
    Elsewhere the core's free-memory reading is replaced (the planning logic is the same)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        spare = (free_memory(device) or 0) - budget
        blocker = torch.empty(max(0, spare), dtype=torch.uint8, device=device)
        try:
            yield
        finally:
            del blocker
            torch.cuda.empty_cache()
        return
    module = sys.modules["gendr_pix.upscale"]  # the name gendr_pix.upscale is the function
    original = module.free_memory
    module.free_memory = lambda d: budget
    try:
        yield
    finally:
        module.free_memory = original


def attempt(call: Callable[[], Any]) -> tuple[Any, str | None]:
    """call()'s result, or the core's refusal as text: a NaN/inf output is an error there (ValueError),
    and a check reports it as a failed row instead of stopping the other measurements."""
    try:
        return call(), None
    except (ValueError, RuntimeError) as e:  # RuntimeError: a kernel missing for a dtype on this device
        return None, f"{type(e).__name__}: {str(e)[:300]}"


def _tile_counter() -> tuple[list[int], Callable]:
    """A progress callback recording the running count of finished tiles (or whole images): those are
    the calls that carry a preview; the others are steps inside one model pass."""
    finished: list[int] = []

    def count(done: int, total: int, preview) -> None:
        if preview is not None:
            finished.append(len(finished) + 1)

    return finished, count


def precision(model: GenDRPix, image: Tensor, device: torch.device, *, cpu_crop: int) -> dict[str, Any]:
    """bf16, fp16, bf16 + channels_last and (CUDA) fp32 with TF32 against strict fp32 on `device`; strict
    fp32 on `device` against the CPU on a crop; the model back on the CPU in float32 after each call."""
    rows: dict[str, dict[str, Any]] = {}
    with strict_fp32():
        reference = upscale(model, image, device=device, dtype=torch.float32)
    variants = [("bf16", torch.bfloat16, False), ("fp16", torch.float16, False), ("bf16+cl", torch.bfloat16, True)]
    if device.type == "cuda":
        variants.insert(0, ("fp32 (TF32)", torch.float32, False))
    restored = True
    for name, dtype, channels_last in variants:
        with on_device(model, device, dtype, channels_last):
            out, error = attempt(functools.partial(upscale, model, image))
        row = difference(out, reference) if error is None else {"error": error, "nonfinite": None}
        row["passed"] = error is None and row["psnr_db"] >= MIN_PSNR_DB[name] and row["max_abs"] <= MAX_ABS_HALF \
            and not row["nonfinite"]
        rows[name] = {**row, "min_psnr_db": MIN_PSNR_DB[name], "max_abs_limit": MAX_ABS_HALF}
    crop = image[..., :cpu_crop, :cpu_crop]
    with strict_fp32():
        here = upscale(model, crop, device=device, dtype=torch.float32)
    restored &= (model.device.type, model.dtype) == ("cpu", torch.float32)
    cpu = difference(here, upscale(model, crop))
    cpu["passed"] = cpu["psnr_db"] >= DEVICE_FP32_MIN_PSNR_DB and cpu["max_abs"] <= DEVICE_FP32_MAX_ABS
    rows[f"fp32 {device.type} vs cpu"] = {**cpu, "min_psnr_db": DEVICE_FP32_MIN_PSNR_DB,
                                          "max_abs_limit": DEVICE_FP32_MAX_ABS}
    h, w = reference.shape[-2:]
    return {"output": [h, w], "rows": rows, "model_restored_to_cpu_fp32": restored,
            "passed": restored and all(r["passed"] for r in rows.values()),
            "summary": ", ".join(f"{k} {r['psnr_db']:.1f} dB max {r['max_abs']:.4f}" if "error" not in r
                                 else f"{k} error" for k, r in rows.items())}


def out_of_memory_halving(model: GenDRPix, image: Tensor, device: torch.device, dtype: torch.dtype, *,
                          overlap: int = 64, min_tile: int = 128, share: float = 0.45) -> dict[str, Any]:
    """An automatic-tile run under a memory cap of `share` x the whole image's peak: the whole image
    must fail, the tile be halved (the core's warning), and the result equal an uncapped run that uses
    the tile the fallback ended at. The cap is invisible to `free_memory`, so the planner picks the whole
    image and the out-of-memory error really happens."""
    opts = UpscaleOptions(tile_overlap=overlap, min_tile=min_tile)
    with on_device(model, device, dtype):
        whole, whole_peak = peak_above(lambda: upscale(model, image, opts), device)
        with HalvingLog().attached() as log, memory_cap(model, device, int(share * whole_peak), whole_peak,
                                                        whole.shape[-2] * whole.shape[-1]):
            start = time.perf_counter()
            capped = upscale(model, image, opts)
            capped_s = time.perf_counter() - start
        final = log.halvings[-1][1] if log.halvings else 0
        same_tile = upscale(model, image, UpscaleOptions(tile=final, tile_overlap=overlap, min_tile=min_tile)) \
            if final else None
    result: dict[str, Any] = {"output": list(whole.shape[-2:]), "whole_peak_bytes": whole_peak,
                              "cap_bytes": int(share * whole_peak), "halvings": log.halvings, "final_tile": final,
                              "capped_run_s": capped_s, "vs_whole": difference(capped, whole)}
    if same_tile is None:
        result.update(passed=False, summary="no out-of-memory halving happened under the cap")
        return result
    same = difference(capped, same_tile)
    result.update(vs_same_tile=same, max_abs_limit=HALVING_MAX_ABS,
                  passed=same["max_abs"] <= HALVING_MAX_ABS and not same["nonfinite"],
                  summary=f"halved {' -> '.join(str(t) for t, _ in log.halvings)} -> {final} px; vs uncapped at "
                          f"{final} px: max {same['max_abs']:.2e}; vs whole {result['vs_whole']['psnr_db']:.1f} dB")
    return result


def auto_tiles(model: GenDRPix, image: Tensor, device: torch.device, dtype: torch.dtype, *,
               overlap: int = 64, min_tile: int = 128, share: float = 1 / 3,
               min_psnr_db: float = TILED_MIN_PSNR_DB) -> dict[str, Any]:
    """Automatic tiles from free memory: with only `share` of the whole image's planned need free,
    `tile=0` must tile, without an out-of-memory error, within the free memory, close to the whole."""
    opts = UpscaleOptions(tile_overlap=overlap, min_tile=min_tile)
    with on_device(model, device, dtype):
        whole_totals, count = _tile_counter()
        whole = upscale(model, image, opts, progress=count)
        h, w = image.shape[-2:]
        oh, ow = output_size(h, w, model.config.scale)
        need = estimate_memory(model, h, w, opts)
        budget = RESERVE + int(share * need * SAFETY) + 3 * 3 * oh * ow * 4  # _plan's images term
        totals, count = _tile_counter()
        with HalvingLog().attached() as log, free_memory_limit(device, budget):
            tiled, peak = peak_above(lambda: upscale(model, image, opts, progress=count), device)
    diff = difference(tiled, whole)
    tiles = max(totals, default=0)
    passed = whole_totals[-1:] == [1] and tiles > 1 and not log.halvings and peak <= budget \
        and diff["psnr_db"] >= min_psnr_db
    return {"output": [oh, ow], "whole_need_bytes": need, "free_budget_bytes": budget, "tiles": tiles,
            "peak_bytes": peak, "halvings": log.halvings, "vs_whole": diff, "min_psnr_db": min_psnr_db,
            "passed": passed, "summary": f"{tiles} tiles in {budget / 1e9:.2f} GB free, peak {peak / 1e9:.2f} GB, "
                                         f"{len(log.halvings)} halvings, vs whole {diff['psnr_db']:.1f} dB"}


def random_model(preset: str, device: torch.device, dtype: str) -> GenDRPix:
    """A randomly initialised model of a UNet preset, built directly on `device` in `dtype` (bench-style)."""
    with torch.device("meta"):
        model = GenDRPix(ModelConfig(unet=UNET_PRESETS[preset]))
    return materialize(model, device, Variant.parse(dtype))


def memory_estimate(models: dict[str, GenDRPix], cases: list[tuple[str, str, int, int]],
                    device: torch.device) -> dict[str, Any]:
    """`estimate_memory` (the meta-device simulation the planner uses) against the allocator's peak for
    one model call at each (model, dtype, output height, width); passed when every peak is within the
    planner's margin (estimate x SAFETY + RESERVE). `ratio` is peak / estimate, the margin it needs."""
    rows = []
    for name, dtype, h, w in cases:
        model = models[name]
        with on_device(model, device, DTYPES[dtype]):
            x = torch.rand(1, 3, h, w, device=device).mul_(2).sub_(1).to(DTYPES[dtype])
            estimate = estimate_memory(model, h, w, UpscaleOptions(scale=1.0, **PLAIN))  # one bare model call
            with torch.inference_mode():
                _, peak = peak_above(functools.partial(model, x, "positive"), device)
            del x
        rows.append({"model": name, "dtype": dtype, "output": [h, w], "estimate_bytes": estimate, "peak_bytes": peak,
                     "ratio": peak / estimate, "passed": peak <= estimate * SAFETY + RESERVE})
    worst = max(rows, key=lambda r: r["ratio"])
    return {"rows": rows, "safety": SAFETY, "reserve_bytes": RESERVE, "passed": all(r["passed"] for r in rows),
            "summary": f"peak / estimate {min(r['ratio'] for r in rows):.2f}-{worst['ratio']:.2f} (highest: "
                       f"{worst['model']} {worst['dtype']} {worst['output'][1]}x{worst['output'][0]})"}


def guidance_fusion(model: GenDRPix, images: list[Tensor], device: torch.device, dtype: torch.dtype, *,
                    repeats: int = 3) -> dict[str, Any]:
    """PadCFG as one batch of two (`fuse`) against two calls: same result, and which is faster here.
    Also what `upscale()`'s planner decides on this device (it fuses when the whole image fits)."""
    from ..upscale import _plan  # the decision under test

    guidance = Guidance(scale=1.5, mode="padcfg")
    rows = []
    with on_device(model, device, dtype), torch.inference_mode():
        for image in images:
            h, w = output_size(*image.shape[-2:], model.config.scale)
            x = torch.rand(1, 3, h, w, device=device).mul_(2).sub_(1).to(dtype)
            calls = {fuse: functools.partial(guided(model, guidance, fuse=fuse), x) for fuse in (False, True)}
            outs = {fuse: peak_above(call, device) for fuse, call in calls.items()}
            times = {fuse: time_runs(call, device, warmup=1, repeats=repeats).median_s for fuse, call in calls.items()}
            diff = difference((outs[True][0] + 1) / 2, (outs[False][0] + 1) / 2)
            planned = _plan(model, UpscaleOptions(guidance=guidance), 1, h, w)[2]
            rows.append({"output": [h, w], "two_calls_s": times[False], "fused_s": times[True],
                         "speedup": times[False] / times[True], "two_calls_peak_bytes": outs[False][1],
                         "fused_peak_bytes": outs[True][1], "planner_fuses": planned, "fused_vs_two_calls": diff,
                         "passed": diff["psnr_db"] >= FUSE_MIN_PSNR_DB and not diff["nonfinite"] and planned})
            del x, outs, calls
    return {"rows": rows, "min_psnr_db": FUSE_MIN_PSNR_DB, "passed": all(r["passed"] for r in rows),
            "summary": ", ".join(f"{r['output'][1]}x{r['output'][0]}: fused {r['speedup']:.2f}x, "
                                 f"{r['fused_vs_two_calls']['psnr_db']:.1f} dB, planner fuses {r['planner_fuses']}"
                                 for r in rows)}


UPSCALE_VARIANTS = ("fp32", "bf16", "fp16", "bf16+cl", "bf16+cl padcfg")


def bundled_speed(model: GenDRPix, image: Tensor, device: torch.device, *, repeats: int = 3) -> dict[str, Any]:
    """The public `upscale()` end to end (resize, model, clamp, float32 copy to the CPU) per precision,
    and PadCFG (fused when it fits): median latency, peak memory above the weights, achieved FLOP/s."""
    h, w = output_size(*image.shape[-2:], model.config.scale)
    with torch.device("meta"):
        twin = GenDRPix(model.config).eval().requires_grad_(False)
    flops = count_flops(twin, torch.empty(1, 3, h, w, device="meta")).total
    rows = []
    for name in UPSCALE_VARIANTS:
        dtype, _, mode = name.partition(" ")
        variant = Variant.parse(dtype)
        opts = UpscaleOptions(guidance=Guidance(scale=1.5, mode="padcfg") if mode else Guidance())
        with on_device(model, device, variant.torch_dtype, variant.channels_last):
            call = functools.partial(upscale, model, image, opts)
            measured, error = attempt(functools.partial(peak_above, call, device))
            timing = time_runs(call, device, warmup=0, repeats=repeats) if error is None else None
        if error is not None:
            rows.append({"variant": name, "error": error})
            continue
        out, peak = measured
        passes = 2 if mode else 1
        rows.append({"variant": name, "latency_s": timing.median_s, "runs_s": list(timing.runs_s), "peak_bytes": peak,
                     "flops": passes * flops, "achieved_flops_per_s": passes * flops / timing.median_s,
                     "nonfinite": int((~torch.isfinite(out)).sum())})
    return {"input": list(image.shape[-2:]), "output": [h, w], "rows": rows,
            "passed": all(r.get("nonfinite") == 0 for r in rows),
            "summary": ", ".join(f"{r['variant']} {r['latency_s']:.3f} s {r['peak_bytes'] / 1e9:.2f} GB"
                                 if "error" not in r else f"{r['variant']} error" for r in rows)}
