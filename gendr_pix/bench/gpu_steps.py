"""What `gpu_check` runs: the steps in priority order, their sizes (full on CUDA, tiny on the CPU), a
time estimate for each from FLOP counts, and how each runs in its own process.

Time estimates. FLOPs are counted on the meta device (`bench.flops`; one multiply-add = 2 FLOPs) for
every model call a step makes, and divided by rates well below an H100's datasheet (989 TFLOP/s dense
bf16, 67 fp32 without tensor cores): 150 TFLOP/s for bf16/fp16, 15 for fp32. fp32 is low on purpose:
85 % of an `sd21` pass at 4K is attention, which runs in fp32 without tensor cores (the memory-
efficient kernel). Each process adds STARTUP_S (Python, torch, CUDA context, cuDNN); each bench case
CASE_S (building an 866M-parameter model, counting its FLOPs). The estimates decide what is skipped,
and each step's time limit; the JSON keeps estimate and actual time side by side, to tune these.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import UNET_PRESETS, ModelConfig
from ..model import GenDRPix
from .flops import count_flops
from .gpu_checks import TILED_MIN_PSNR_DB
from .pipelines import Case, Variant, flops

RATES = {"cuda": {"fp32": 15e12, "bf16": 150e12, "fp16": 150e12}, "cpu": {"fp32": 2e10, "bf16": 2e10, "fp16": 5e9}}
STARTUP_S = {"cuda": 10.0, "cpu": 10.0}
CHECK_S = {"cuda": 5.0, "cpu": 2.0}
"""A check's own overhead: loading the model and the photo, meta-device simulations for the planner."""
CASE_S = {"cuda": 4.0, "cpu": 2.0}
PYTEST_S = {"cuda": 60.0, "cpu": 15.0}
REPO = Path(__file__).resolve().parents[2]
PHOTO_FALLBACK = REPO / "example_workflows" / "gendr_pix_example_coffee.png"


@dataclass(frozen=True, kw_only=True)
class Sizes:
    """Input (low-resolution) edges of the checks; outputs are x4 (the bundled model's scale)."""

    precision: int
    cpu_crop: int
    oom: int
    tiles: int
    fusion: tuple[int, ...]
    bundled: int
    overlap: int
    min_tile: int
    repeats: int
    """Timed runs per measurement (their median is reported)."""
    tiled_min_psnr_db: float
    """Automatic tiles vs the whole image (`gpu_checks.TILED_MIN_PSNR_DB`, or lower for a random model)."""
    memory: tuple[tuple[str, str, int, int], ...]
    """(model, dtype, output height, width): `model` is the bundled one (tiny: a random one), `sd21` random."""
    bench_preset: str
    bench: dict[str, list[str]] = field(default_factory=dict)
    """Bench step name -> its extra arguments (sizes, pipelines, variants, repeats)."""


FULL = Sizes(
    precision=256, cpu_crop=128, oom=512, tiles=512, fusion=(128, 512), bundled=1024, overlap=64, min_tile=128,
    repeats=3, tiled_min_psnr_db=TILED_MIN_PSNR_DB,
    # Activation estimates: bundled bf16 0.03 / 0.40 GB at 1024 / 4096, fp32 0.81 GB at 4096; sd21 bf16 about
    # 0.9 GB at 3840x2160. Sizes where they pass the planner's 512 MB reserve test its 25 % margin.
    memory=(("model", "bf16", 1024, 1024), ("model", "bf16", 4096, 4096), ("model", "fp32", 4096, 4096),
            ("sd21", "bf16", 512, 512), ("sd21", "bf16", 2048, 2048), ("sd21", "bf16", 2160, 3840),
            ("sd21", "fp32", 2048, 2048)),
    bench_preset="sd21",
    bench={
        "bench_512": ["--sizes", "512", "--variants", "fp32", "bf16", "bf16+cl", "--warmup", "2", "--repeats", "5"],
        "bench_2048": ["--sizes", "2048", "--variants", "fp32", "bf16", "bf16+cl", "--repeats", "3"],
        "bench_4k": ["--sizes", "3840x2160", "--variants", "bf16", "bf16+cl", "--repeats", "3"],
        "bench_padcfg": ["--sizes", "512", "3840x2160", "--pipelines", "padcfg", "--variants", "bf16+cl",
                         "bf16+cl+fuse", "--repeats", "2"],
        "bench_4k_fp32": ["--sizes", "3840x2160", "--variants", "fp32", "--repeats", "1"],
    },
)
TINY = Sizes(
    precision=24, cpu_crop=16, oom=32, tiles=32, fusion=(16,), bundled=32, overlap=16, min_tile=32,
    repeats=1, tiled_min_psnr_db=15.0,  # a random model's noise-like output: tiles differ by ~21 dB
    memory=(("model", "fp32", 64, 64), ("model", "bf16", 64, 48), ("sd21", "fp32", 48, 48)),
    bench_preset="tiny",
    bench={"bench_512": ["--sizes", "64", "--pipelines", "pixel", "padcfg", "--variants", "fp32", "--repeats", "1",
                         "--no-isolate", "--no-ceiling"]},
)
"""The CPU rehearsal: the same steps on a seeded random model of the `tiny` preset, at tiny sizes."""


@dataclass(frozen=True)
class Setup:
    device: str
    """"cuda" (the real check) or "cpu" with `tiny` (a rehearsal of the same code paths)."""
    tiny: bool
    photo: Path | None

    @property
    def sizes(self) -> Sizes:
        return TINY if self.tiny else FULL

    def child_args(self) -> list[str]:
        return ["--device", self.device, *(["--tiny"] if self.tiny else []),
                *(["--photo", str(self.photo)] if self.photo else [])]


def default_photo() -> Path | None:
    """A real photo for the quality checks: the first validation photo if this checkout has them
    (`data/` is git-ignored: carry it), else the small example photo the repo ships."""
    val = sorted((REPO / "data" / "photos" / "val").glob("*.jpg"))
    return val[0] if val else PHOTO_FALLBACK if PHOTO_FALLBACK.is_file() else None


# --- estimates --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _model_flops(preset: str | None, h: int, w: int) -> int:
    """FLOPs of one pass of the bundled model's shape (preset None: `small`) at h x w output."""
    config = ModelConfig(unet=UNET_PRESETS[preset or "small"])
    with torch.device("meta"):
        twin = GenDRPix(config).eval().requires_grad_(False)
    return count_flops(twin, torch.empty(1, 3, h, w, device="meta")).total


@functools.lru_cache(maxsize=64)
def _case_flops(pipeline: str, preset: str, h: int, w: int) -> int:
    return flops(Case(pipeline=pipeline, preset=preset, height=h, width=w, variant=Variant())).total


def _seconds(setup: Setup, passes: list[tuple[str, int]]) -> float:
    """(dtype, FLOPs) per model call -> seconds at the assumed rates, plus one process start and a check's
    own overhead."""
    rates = RATES[setup.device]
    return STARTUP_S[setup.device] + CHECK_S[setup.device] + sum(f / rates[d] for d, f in passes)


def estimate(name: str, setup: Setup) -> float:
    """Seconds a step should take on `setup` (see the module doc for how)."""
    s, dev = setup.sizes, setup.device
    tiny = "tiny" if setup.tiny else None
    px = lambda lr: _model_flops(tiny, 4 * lr, 4 * lr)  # noqa: E731
    if name == "env":
        return STARTUP_S[dev] + 5
    if name == "pytest":
        return PYTEST_S[dev]
    if name == "precision":
        return _seconds(setup, [("fp32", px(s.precision))] * 2 + [("bf16", px(s.precision))] * 3
                        + [("fp32", px(s.cpu_crop))]) + px(s.cpu_crop) / RATES["cpu"]["fp32"]
    if name in ("oom", "tiles"):
        return _seconds(setup, [("bf16", px(s.oom if name == "oom" else s.tiles))] * 4)
    if name == "memory":
        presets = {"model": tiny, "sd21": s.bench_preset}
        return _seconds(setup, [(d, _model_flops(presets[m], h, w)) for m, d, h, w in s.memory])
    if name == "fusion":  # each of 2 ways: a measured run, a warm-up, the timed runs; 2 passes each
        return _seconds(setup, [("bf16", px(lr)) for lr in s.fusion for _ in range(2 * 2 * (2 + s.repeats))])
    if name == "bundled":  # per variant: a measured run and the timed runs; PadCFG is two passes
        runs = 1 + s.repeats
        return _seconds(setup, [(d, px(s.bundled) * runs * k) for d, k in (("fp32", 1), ("bf16", 1), ("fp16", 1),
                                                                             ("bf16", 1), ("bf16", 2))])
    if name in s.bench:
        return _bench_seconds(setup, s.bench[name])
    raise KeyError(name)


def _bench_seconds(setup: Setup, args: list[str]) -> float:
    from .cli import parse_size

    opt = _options(args)
    sizes = [parse_size(t) for t in opt["--sizes"]]
    pipelines = opt.get("--pipelines", ["pixel", "latent"])
    variants = [Variant.parse(v) for v in opt["--variants"]]
    runs = 1 + max(0, int(opt.get("--warmup", ["1"])[0]) - 1) + int(opt.get("--repeats", ["3"])[0])
    rates = RATES[setup.device]
    total = STARTUP_S[setup.device]
    for h, w in sizes:
        for pipeline in pipelines:
            f = _case_flops(pipeline, setup.sizes.bench_preset, h, w)
            total += sum(CASE_S[setup.device] + runs * f / rates[v.dtype] for v in variants)
    return total


def _options(args: list[str]) -> dict[str, list[str]]:
    """['--sizes', '512', '--repeats', '3'] -> {'--sizes': ['512'], '--repeats': ['3']}."""
    out: dict[str, list[str]] = {}
    key = None
    for a in args:
        if a.startswith("--"):
            key = a
            out[key] = []
        elif key is not None:
            out[key].append(a)
    return out


# --- how each step runs -----------------------------------------------------------------------------

CHECK_STEPS = ("env", "precision", "oom", "tiles", "memory", "fusion", "bundled")
ORDER = ("env", "pytest", "precision", "oom", "tiles", "memory", "fusion", "bundled",
         "bench_512", "bench_2048", "bench_4k", "bench_padcfg", "bench_4k_fp32")
"""Priority order: the correctness checks first, the long sd21 timings last (fp32 at 4K the last)."""

DESCRIPTIONS = {
    "env": "GPU, driver, torch/CUDA/cuDNN versions, attention kernels, matmul ceilings",
    "pytest": "tests marked `cuda` (tests/test_cuda.py): precision, fused PadCFG, tiles, halving, placement",
    "precision": "bundled model on a photo: bf16 / fp16 / bf16+cl / TF32 vs fp32, and the GPU vs the CPU",
    "oom": "per-process memory cap: the whole image fails, the tile is halved, result = uncapped run",
    "tiles": "automatic tiles when free memory is short (a blocker tensor): no OOM, within budget",
    "memory": "estimate_memory (meta simulation) vs torch.cuda.max_memory_allocated",
    "fusion": "PadCFG fused (one batch of two) vs two calls: equal, which is faster, what the planner picks",
    "bundled": "bundled model, upscale() end to end, 1024 -> 4096: fp32 / bf16 / fp16 / bf16+cl / PadCFG",
    "bench_512": "sd21 pixel vs latent at 512 (fp32, bf16, bf16+cl)",
    "bench_2048": "sd21 pixel vs latent at 2048 (fp32, bf16, bf16+cl)",
    "bench_4k": "sd21 pixel vs latent at 3840x2160 (bf16, bf16+cl)",
    "bench_padcfg": "sd21 PadCFG two passes vs +fuse at 512 and 3840x2160 (bf16+cl)",
    "bench_4k_fp32": "sd21 pixel vs latent at 3840x2160 in fp32",
}


def steps_for(setup: Setup) -> list[str]:
    return [n for n in ORDER if n in CHECK_STEPS or n == "pytest" or n in setup.sizes.bench]


def command(name: str, setup: Setup, work: Path) -> list[str]:
    """The child process of one step; it writes its result as JSON to `result_path(name, work)`."""
    out = result_path(name, work)
    if name == "pytest":
        return [sys.executable, "-m", "pytest", "-m", "cuda", str(REPO / "tests" / "test_cuda.py"), "-q",
                "-p", "no:cacheprovider", "--junitxml", str(out.with_suffix(".xml"))]
    if name in CHECK_STEPS:
        return [sys.executable, "-m", "gendr_pix.bench.gpu_check", "--run-step", name, "--step-json", str(out),
                *setup.child_args()]
    return [sys.executable, "-m", "gendr_pix", "bench", "--compare", "--preset", setup.sizes.bench_preset,
            "--device", setup.device, *setup.sizes.bench[name], "--json", str(out)]


def result_path(name: str, work: Path) -> Path:
    return work / f"{name}.json"


def collect(name: str, work: Path, proc: subprocess.CompletedProcess) -> dict[str, Any]:
    """A finished child's result: passed, summary, and what it measured."""
    if name == "pytest":
        return _pytest_result(result_path(name, work).with_suffix(".xml"), proc.returncode)
    path = result_path(name, work)
    if proc.returncode != 0 or not path.is_file():
        return {"passed": False, "summary": f"exit {proc.returncode}", "error": _tail(proc)}
    data = json.loads(path.read_text())
    if name in CHECK_STEPS:
        return data
    errors = [f"{r['label']}: {r['error']}" for r in data["results"] if "error" in r]
    from .report import comparison_table

    return {**data, "passed": not errors, "errors": errors, "table": comparison_table(data["results"]),
            "summary": _bench_summary(data["results"]) + (f"; {len(errors)} failed" if errors else "")}


def _bench_summary(results: list[dict[str, Any]]) -> str:
    ok = [r for r in results if "error" not in r]
    return ", ".join(f"{r['pipeline']} {r['variant']} {r['width']}x{r['height']} {r['latency_s'] * 1e3:.1f} ms"
                     for r in ok[:6]) + (" ..." if len(ok) > 6 else "")


def _pytest_result(xml: Path, returncode: int) -> dict[str, Any]:
    import xml.etree.ElementTree as ET

    if not xml.is_file():
        return {"passed": False, "summary": f"pytest exit {returncode}, no report"}
    tests = []
    for case in ET.parse(xml).getroot().iter("testcase"):
        outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
        detail = next((c.get("message", "")[:300] for c in case if c.tag in ("failure", "error", "skipped")), "")
        tests.append({"test": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome,
                      "seconds": float(case.get("time", 0)), "detail": detail})
    counts = {k: sum(t["outcome"] == k for t in tests) for k in ("passed", "failure", "error", "skipped")}
    return {"tests": tests, "counts": counts, "exit": returncode,
            "passed": returncode == 0 and not counts["failure"] and not counts["error"],
            "summary": ", ".join(f"{n} {k}" for k, n in counts.items() if n)}


def _tail(proc: subprocess.CompletedProcess, lines: int = 15) -> str:
    text = (proc.stderr or "") + (proc.stdout or "")
    return "\n".join(text.strip().splitlines()[-lines:])
