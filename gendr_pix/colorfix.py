"""Colour correction of the restored image against the resized input (it keeps the input's colours).

wavelet: the output's high frequencies + the input's low frequencies (StableSR's wavelet fix).
adain: per-image, per-channel mean and std of the output matched to the input's.
Independently of the mode, `upscale()` returns grey images grey (`is_grey`, `to_grey`).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from .choices import COLOR_FIXES

ColorFix = Literal["none", "wavelet", "adain"]


def _blur(x: Tensor, dilation: int) -> Tensor:
    k = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=x.dtype, device=x.device) / 16
    k = k.expand(x.shape[1], 1, 3, 3)
    pad = dilation
    # Replicate padding works at any image size (reflect needs pad < size).
    return F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="replicate"), k, dilation=dilation, groups=x.shape[1])


def wavelet_split(x: Tensor, levels: int = 5) -> tuple[Tensor, Tensor]:
    """x -> (high, low) with high + low == x; low is blurred at dilations 1, 2, 4, ... 2^(levels-1)."""
    low = x
    for i in range(levels):
        low = _blur(low, 2**i)
    return x - low, low


def color_fix(image: Tensor, reference: Tensor, mode: ColorFix) -> Tensor:
    """image, reference: [B, C, H, W] of the same shape. Returns the corrected image (not clamped)."""
    if mode == "none":
        return image
    if image.shape != reference.shape:
        raise ValueError(f"colour fix needs equal shapes, got {tuple(image.shape)} and {tuple(reference.shape)}")
    if mode == "wavelet":
        return wavelet_split(image)[0] + wavelet_split(reference)[1]
    if mode == "adain":
        dims = (-2, -1)
        mu, sd = image.mean(dims, keepdim=True), image.std(dims, keepdim=True, correction=0)
        ref_mu, ref_sd = reference.mean(dims, keepdim=True), reference.std(dims, keepdim=True, correction=0)
        return (image - mu) / sd.clamp_min(1e-5) * ref_sd + ref_mu
    raise ValueError(f"colour fix must be one of {COLOR_FIXES}, got {mode!r}")


GREY_TOLERANCE = 0.5 / 255
"""An image whose R, G and B differ nowhere by more than half an 8-bit step counts as grey."""
LUMA = (0.299, 0.587, 0.114)
"""Rec. 601 luma weights (Pillow's RGB -> L), for the grey value of a restored grey image."""


def is_grey(rgb: Tensor) -> Tensor:
    """[B, 3, H, W] -> bool [B]: the image has no colour (a greyscale file loaded as RGB)."""
    spread = (rgb.amax(1) - rgb.amin(1)).flatten(1).amax(1)
    return spread <= GREY_TOLERANCE


def to_grey(rgb: Tensor) -> Tensor:
    """[N, 3, H, W] -> the luma in all three channels. A grey input must come out grey: a model that
    has only seen colour photos otherwise tints it (measured with the bundled model)."""
    luma = torch.einsum("nchw,c->nhw", rgb, torch.tensor(LUMA, dtype=rgb.dtype, device=rgb.device))
    return luma[:, None].expand_as(rgb)
