"""A NaN or infinite model output is an error, never an image.

Clamped and saved, NaN turns black and the run looks like a success. The check is one sum per
tile; the diagnosis (which weights, or half precision) runs only when it fails.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .errors import NonFiniteOutputError
from .guidance import Restorer
from .model import GenDRPix

HALF_PRECISION = (torch.float16, torch.bfloat16)


def finite_checked(restore: Restorer, model: GenDRPix) -> Restorer:
    """Wrap `restore` so a tile with NaN or infinite values raises `NonFiniteOutputError`."""

    def run(x: Tensor) -> Tensor:
        y = restore(x)
        # The sum is NaN or infinite when any value is: one read of the tile and no mask (13 ms of CPU
        # time at 4096x4096 against 336 ms for isfinite().all()). Only a failed sum pays the exact check,
        # which also rules out finite values too large to sum. On a GPU the bool() waits for the tile,
        # which the caller copies to the CPU next anyway.
        if not bool(torch.isfinite(y.sum(dtype=torch.float32))) and not bool(torch.isfinite(y).all()):
            raise non_finite_error(model, y)
        return y

    return run


def non_finite_error(model: GenDRPix, output: Tensor) -> NonFiniteOutputError:
    """Why `model` gave `output` with non-finite values, and the fix."""
    share = (~torch.isfinite(output)).float().mean().item()
    head = "The model's output holds NaN or infinite values ({share:.1%} of the values), so there is no image: "
    source = model.source or "the model file"
    bad = [name for name, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
    if bad:
        return NonFiniteOutputError(
            head + "{count} of its weight tensors hold NaN or infinite values (the first: {first}). {source} is "
            "broken: download or export it again.", share=share, count=len(bad), first=bad[0], source=source)
    if model.dtype in HALF_PRECISION:
        return NonFiniteOutputError(
            head + "it ran in {dtype}, and its activations overflowed that precision. Run it in float32 ({fp32}).",
            share=share, dtype=str(model.dtype).removeprefix("torch."))
    largest = max(float(p.detach().abs().max()) for p in model.parameters())
    return NonFiniteOutputError(
        head + "its weights are finite (largest magnitude {largest:.3g}) but its activations overflowed even in "
        "float32: the weights in {source} are probably broken or made for another architecture.",
        share=share, largest=largest, source=source)
