"""Full-reference fidelity metrics as the SR literature computes them: PSNR and SSIM on the Y channel
(ITU-R BT.601, 8-bit range) with a border of `crop` pixels removed."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def rgb_to_y(x: Tensor) -> Tensor:
    """[B, 3, H, W] RGB in [0, 1] -> [B, 1, H, W] Y in [16, 235] (MATLAB rgb2ycbcr)."""
    w = torch.tensor([65.481, 128.553, 24.966], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True) + 16.0


def _prep(x: Tensor, y: Tensor, crop: int) -> tuple[Tensor, Tensor]:
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    # Quantise to 8 bits first, as metrics on saved images are computed.
    x, y = (x.double().clamp(0, 1) * 255).round() / 255, (y.double().clamp(0, 1) * 255).round() / 255
    x, y = rgb_to_y(x), rgb_to_y(y)
    if crop:
        x, y = x[..., crop:-crop, crop:-crop], y[..., crop:-crop, crop:-crop]
    return x, y


def psnr_y(x: Tensor, y: Tensor, crop: int = 4) -> Tensor:
    """PSNR in dB per image [B]."""
    a, b = _prep(x, y, crop)
    mse = (a - b).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return (10 * torch.log10(255.0**2 / mse)).float()


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim_y(x: Tensor, y: Tensor, crop: int = 4) -> Tensor:
    """SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, valid region) per image [B]."""
    a, b = _prep(x, y, crop)
    w = _gaussian_window().to(a.device)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    saa = F.conv2d(a * a, w) - mu_a**2
    sbb = F.conv2d(b * b, w) - mu_b**2
    sab = F.conv2d(a * b, w) - mu_a * mu_b
    m = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return m.mean(dim=(1, 2, 3)).float()
