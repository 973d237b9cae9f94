"""Opt-in speed levers that change how the model runs, not what it computes.

Measured on a 2-core AMD EPYC CPU (README "Performance"): bf16 + channels_last pays; torch.compile
does not (2.7x slower steady state for `small` at 2048x2048, plus ~2 minutes of compilation), so
nothing here is on by default. On CUDA, compile is the lever for fixed sizes (video frames, tiles).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from .choices import PRECISIONS
from .model import GenDRPix

log = logging.getLogger(__name__)

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
"""The torch dtype of each precision name in `PRECISIONS` but auto."""


def resolve_dtype(precision: str, *, device_type: str, bf16_ok: bool, fp16_ok: bool) -> torch.dtype:
    """Weight/compute dtype for a precision name.

    auto: float32 on the CPU (half precision is slow there); on an accelerator bfloat16 where it is
    supported (its float32-sized range keeps the UNet's activations safe), else float16, else float32.
    `bf16_ok`/`fp16_ok` come from the host's device checks (ComfyUI's, or torch's in `device_dtype`).
    """
    if precision in DTYPES:
        return DTYPES[precision]
    if precision != "auto":
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if device_type == "cpu":
        return torch.float32
    if bf16_ok:
        return torch.bfloat16
    return torch.float16 if fp16_ok else torch.float32


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The device a name means, checked against this torch build (the CLI's --device, the API's device=).

    "auto": CUDA if torch sees a GPU, else Apple's MPS, else the CPU. Raises ValueError for an unknown
    name or a device this torch build cannot use.
    """
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    name = str(device)
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:1 or mps)") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but this torch build sees no CUDA GPU (use auto or cpu)")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                         f"numbered from 0")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} was asked for but this torch build cannot use MPS (use auto or cpu)")
    return resolved


def device_dtype(precision: str | torch.dtype, device: torch.device) -> torch.dtype:
    """The dtype a precision name (`PRECISIONS`) means on `device`, from torch's own checks of the
    device; a torch dtype passes through. This is the CLI's and the API's auto; ComfyUI's loader gives
    ComfyUI's own checks to `resolve_dtype` instead. Raises ValueError for any other value."""
    if isinstance(precision, torch.dtype):
        if not precision.is_floating_point:
            raise ValueError(f"dtype must be a floating-point type, got {precision}")
        return precision
    bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return resolve_dtype(precision, device_type=device.type, bf16_ok=bf16_ok, fp16_ok=device.type != "cpu")


def use_channels_last(model: GenDRPix) -> GenDRPix:
    """Convert the weights to NHWC (in place). GenDRPix.forward then feeds NHWC activations; oneDNN
    (CPU, bf16) and tensor-core GPUs run their convolutions faster that way."""
    return model.to(memory_format=torch.channels_last)


def compile_unet(model: GenDRPix, *, cache_dir: str | Path | None = None, mode: str | None = None) -> GenDRPix:
    """torch.compile the UNet in place (state-dict keys unchanged), for fixed input sizes.

    The first call at each size compiles (minutes on a CPU, tens of seconds on a GPU); inductor's
    on-disk graph cache makes later processes start fast. cache_dir: where that cache lives; it sets
    TORCHINDUCTOR_CACHE_DIR for this process unless that is already set. mode: e.g.
    "max-autotune" (CUDA graphs + autotuning; longer compile).
    """
    if cache_dir is not None:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(cache_dir).expanduser()))
    log.info("compiling the UNet (mode=%s); the first call per input size is slow", mode or "default")
    model.unet.compile(dynamic=False, mode=mode)
    return model
