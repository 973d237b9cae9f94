"""One `gpu_check` step inside its own process: the model, the photo at the step's size, the check."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checkpoint import load_default_model
from ..imageio import load_image
from ..model import GenDRPix
from . import gpu_checks as checks
from .gpu_steps import Setup
from .measure import machine_info, matmul_peak_flops


def run_step(name: str, setup: Setup) -> dict[str, Any]:
    device = torch.device(setup.device)
    s = setup.sizes
    if name == "env":
        return environment(device, setup.tiny)
    model = the_model(setup)
    dtype = torch.bfloat16
    if name == "precision":
        return checks.precision(model, photo(setup, s.precision), device, cpu_crop=s.cpu_crop)
    if name == "oom":
        return checks.out_of_memory_halving(model, photo(setup, s.oom), device, dtype, overlap=s.overlap,
                                            min_tile=s.min_tile)
    if name == "tiles":
        return checks.auto_tiles(model, photo(setup, s.tiles), device, dtype, overlap=s.overlap, min_tile=s.min_tile,
                                 min_psnr_db=s.tiled_min_psnr_db)
    if name == "memory":
        models = {"model": model, "sd21": checks.random_model(s.bench_preset, device, "bf16")}
        return checks.memory_estimate(models, list(s.memory), device)
    if name == "fusion":
        return checks.guidance_fusion(model, [photo(setup, e) for e in s.fusion], device, dtype, repeats=s.repeats)
    if name == "bundled":
        return checks.bundled_speed(model, photo(setup, s.bundled), device, repeats=s.repeats)
    raise ValueError(f"unknown step {name!r}")


def the_model(setup: Setup) -> GenDRPix:
    """The bundled model (float32, on the CPU); in the tiny rehearsal a seeded random `tiny` one."""
    if not setup.tiny:
        return load_default_model()
    torch.manual_seed(0)
    return checks.random_model("tiny", torch.device("cpu"), "fp32")


def photo(setup: Setup, edge: int) -> Tensor:
    """A square crop of `edge` px from the middle of the photo, resized first if the photo is smaller;
    random noise if no photo exists (recorded by the parent as photo: null)."""
    if setup.photo is None:
        return torch.rand(1, 3, edge, edge, generator=torch.Generator().manual_seed(0))
    image = load_image(setup.photo)[:, :3]
    h, w = image.shape[-2:]
    if min(h, w) < edge:
        k = edge / min(h, w)
        image = F.interpolate(image, size=(max(edge, round(h * k)), max(edge, round(w * k))), mode="bicubic",
                              antialias=True).clamp(0, 1)
        h, w = image.shape[-2:]
    top, left = (h - edge) // 2, (w - edge) // 2
    return image[..., top:top + edge, left:left + edge].contiguous()


def environment(device: torch.device, tiny: bool) -> dict[str, Any]:
    """What the numbers were measured on, and the device's matmul ceilings (the bench's floor)."""
    info: dict[str, Any] = {"machine": machine_info(device), "cuda": torch.version.cuda,
                            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        free, total = torch.cuda.mem_get_info(device)
        sdpa = {k: getattr(torch.backends.cuda, f"{k}_sdp_enabled", lambda: None)()
                for k in ("flash", "mem_efficient", "math", "cudnn")}
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                    multiprocessors=props.multi_processor_count, total_memory_bytes=total, free_memory_bytes=free,
                    bf16_supported=torch.cuda.is_bf16_supported(), sdpa_enabled=sdpa, driver=_nvidia_smi(),
                    tf32={"cudnn": torch.backends.cudnn.allow_tf32, "matmul": torch.backends.cuda.matmul.allow_tf32})
    n = 256 if tiny else 8192
    ceilings = {}
    for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16), ("fp32", torch.float32)):
        try:
            ceilings[name] = matmul_peak_flops(device, dtype, n=n)
        except RuntimeError as e:
            ceilings[name] = None
            info.setdefault("ceiling_errors", {})[name] = str(e)[:200]
    info["matmul_ceiling_flops_per_s"] = ceilings
    rates = ", ".join(f"{k} {v / 1e12:.1f} TFLOP/s" for k, v in ceilings.items() if v)
    gpu = info.get("gpu") or info["machine"].get("cpu")
    return {**info, "passed": True, "summary": f"{gpu}, torch {torch.__version__}, CUDA {torch.version.cuda}, {rates}"}


def _nvidia_smi() -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
