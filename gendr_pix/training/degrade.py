"""Degradations that turn a high-quality crop into a low-quality input, on the CPU in DataLoader workers.

`second_order` is the Real-ESRGAN pipeline (blur -> resize -> noise -> JPEG, twice, then a final sinc
filter and JPEG in random order) with its published parameter ranges; `bicubic` is the plain x4
bicubic downscale used for fidelity checks. Everything is numpy/torch/Pillow; every random draw comes
from the `numpy.random.Generator` passed in, so a sample is reproducible from its seed.
Images are float32 tensors [3, H, W] in [0, 1].
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from .kernels import random_kernel, random_sinc

RESIZE_MODES = ("area", "bilinear", "bicubic")


@dataclass(frozen=True, kw_only=True)
class OrderConfig:
    """One blur-resize-noise-JPEG round. Defaults: Real-ESRGAN's first order."""

    blur_prob: float = 1.0
    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    kernel_probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    """Weights of iso, aniso, generalized iso/aniso, plateau iso/aniso."""
    sigma: tuple[float, float] = (0.2, 3.0)
    beta_g: tuple[float, float] = (0.5, 4.0)
    beta_p: tuple[float, float] = (1.0, 2.0)
    sinc_prob: float = 0.1
    """Chance the blur kernel is a sinc (ringing) instead."""
    resize_probs: tuple[float, float, float] = (0.2, 0.7, 0.1)
    """Up, down, keep."""
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_prob: float = 0.5
    """Gaussian noise with this chance, else Poisson."""
    noise_sigma: tuple[float, float] = (1.0, 30.0)
    """Gaussian std in 8-bit levels."""
    poisson_scale: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_quality: tuple[int, int] = (30, 95)


SECOND_ORDER = OrderConfig(
    blur_prob=0.8, sigma=(0.2, 1.5), beta_g=(0.5, 4.0), beta_p=(1.0, 2.0), resize_probs=(0.3, 0.4, 0.3),
    resize_range=(0.3, 1.2), noise_sigma=(1.0, 25.0), poisson_scale=(0.05, 2.5),
)


@dataclass(frozen=True, kw_only=True)
class DegradeConfig:
    """The whole pipeline. `kind` "realesrgan" (second order) or "bicubic"."""

    kind: str = "realesrgan"
    scale: int = 4
    first: OrderConfig = OrderConfig()
    second: OrderConfig = SECOND_ORDER
    second_order_prob: float = 1.0
    """Chance the second round runs at all (Real-ESRGAN: always, but with its own blur probability)."""
    final_sinc_prob: float = 0.8

    def __post_init__(self) -> None:
        if self.kind not in ("realesrgan", "bicubic"):
            raise ValueError(f"degradation kind must be 'realesrgan' or 'bicubic', got {self.kind!r}")
        if self.scale < 1:
            raise ValueError(f"scale must be >= 1, got {self.scale}")


def filter2d(img: Tensor, kernel: np.ndarray) -> Tensor:
    """Filter [3, H, W] with a 2-D kernel, reflect-padded (replicate when the image is too small).

    Done as an FFT product of the padded image: 3-10x faster than a depthwise conv2d for 7..21 px
    kernels on the CPU. All our kernels are point-symmetric, so convolution equals correlation.
    """
    k = torch.from_numpy(np.ascontiguousarray(kernel)).float()
    p = k.shape[-1] // 2
    h, w = img.shape[-2:]
    mode = "reflect" if min(h, w) > p else "replicate"
    x = F.pad(img[None], (p, p, p, p), mode=mode)[0]
    size = x.shape[-2:]
    y = torch.fft.irfft2(torch.fft.rfft2(x) * torch.fft.rfft2(k, s=size), s=size)
    # Circular convolution: output n sees inputs n - 2p .. n, all inside the padded image from n = 2p on.
    return y[:, 2 * p:, 2 * p:]


def resize_to(img: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    size = (max(1, size[0]), max(1, size[1]))
    kw = {} if mode == "area" else {"align_corners": False, "antialias": True}
    return F.interpolate(img[None], size=size, mode=mode, **kw)[0]


def jpeg(img: Tensor, quality: int) -> Tensor:
    """Round-trip through Pillow's JPEG encoder at `quality` (4:2:0 chroma, as most cameras/web)."""
    arr = (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    out = np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(out.copy()).permute(2, 0, 1)


POISSON_VALS = 256.0


def _poisson_cdf_table() -> np.ndarray:
    """Poisson CDF for lambda = level * 256 / 255, one row per 8-bit level, k = 0..K-1 (K covers > 14 sigma),
    each row shifted by its level so that the flattened table is sorted: [256 * K]."""
    lam = np.arange(256)[:, None] * POISSON_VALS / 255
    k = np.arange(int(POISSON_VALS + 14 * POISSON_VALS ** 0.5))[None, :]
    log_pmf = k * np.log(np.maximum(lam, 1e-300)) - lam - np.array([math.lgamma(i + 1) for i in k[0]])[None, :]
    pmf = np.where(lam > 0, np.exp(log_pmf), (k == 0).astype(float))
    cdf = np.minimum(np.cumsum(pmf, axis=1), 1.0)
    cdf[:, -1] = 1.0
    return (cdf + np.arange(256)[:, None]).ravel()


_POISSON_CDF = _poisson_cdf_table()
_POISSON_K = _POISSON_CDF.size // 256


def poisson_counts(levels: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Poisson(level * 256 / 255) per pixel by inverting its CDF with one uniform each (float32 counts).

    numpy's own Poisson sampler uses a data-dependent number of draws, so a last-bit difference of a
    pixel (another CPU's blur) shifted the rest of the stream: the later noise, JPEG quality and
    second order of that sample all changed. Here each pixel takes exactly one draw and depends only
    on its own level."""
    index = np.searchsorted(_POISSON_CDF, uniforms + levels, side="right")
    return np.minimum(index - levels * _POISSON_K, _POISSON_K - 1).astype(np.float32)


def add_noise(img: Tensor, cfg: OrderConfig, rng: np.random.Generator) -> Tensor:
    gray = rng.uniform() < cfg.gray_noise_prob
    shape = (1, *img.shape[1:]) if gray else img.shape
    if rng.uniform() < cfg.gaussian_prob:
        sigma = rng.uniform(*cfg.noise_sigma) / 255
        noise = torch.from_numpy(rng.standard_normal(shape).astype(np.float32)) * sigma
    else:
        # Poisson (shot) noise as Real-ESRGAN draws it: x rounded to 8 bits, Poisson(x * 256) / 256 - x,
        # times a scale.
        scale = rng.uniform(*cfg.poisson_scale)
        src = img.mean(0, keepdim=True) if gray else img
        levels = (src.clamp(0, 1) * 255).round()
        counts = poisson_counts(levels.numpy().astype(np.int64), rng.uniform(size=levels.shape))
        noise = (torch.from_numpy(counts) / POISSON_VALS - levels / 255) * scale
    return (img + noise.expand_as(img)).clamp(0, 1)


def one_order(img: Tensor, cfg: OrderConfig, rng: np.random.Generator) -> Tensor:
    """blur -> random resize (relative to the current size) -> noise -> JPEG."""
    if rng.uniform() < cfg.blur_prob:
        size = int(rng.choice(cfg.kernel_sizes))
        if rng.uniform() < cfg.sinc_prob:
            kernel = random_sinc(rng, size)
        else:
            kernel = random_kernel(rng, size, cfg.sigma, cfg.kernel_probs, cfg.beta_g, cfg.beta_p)
        img = filter2d(img, kernel)
    direction = rng.choice(3, p=np.asarray(cfg.resize_probs) / sum(cfg.resize_probs))
    factor = (rng.uniform(1, cfg.resize_range[1]), rng.uniform(cfg.resize_range[0], 1), 1.0)[direction]
    mode = RESIZE_MODES[rng.integers(len(RESIZE_MODES))]
    h, w = img.shape[-2:]
    img = resize_to(img, (int(h * factor), int(w * factor)), mode).clamp(0, 1)
    img = add_noise(img, cfg, rng)
    return jpeg(img, rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))


def second_order(hq: Tensor, cfg: DegradeConfig, rng: np.random.Generator) -> Tensor:
    """Real-ESRGAN's pipeline: [3, H, W] -> [3, H/scale, W/scale]."""
    h, w = hq.shape[-2:]
    out_size = (h // cfg.scale, w // cfg.scale)
    img = one_order(hq, cfg.first, rng)
    if rng.uniform() < cfg.second_order_prob:
        img = one_order(img, cfg.second, rng)
    mode = RESIZE_MODES[rng.integers(len(RESIZE_MODES))]
    sinc = random_sinc(rng, int(rng.choice(cfg.first.kernel_sizes))) if rng.uniform() < cfg.final_sinc_prob else None
    quality = rng.integers(cfg.second.jpeg_quality[0], cfg.second.jpeg_quality[1] + 1)
    if rng.uniform() < 0.5:  # resize + sinc, then JPEG
        img = resize_to(img, out_size, mode)
        img = filter2d(img, sinc) if sinc is not None else img
        img = jpeg(img.clamp(0, 1), quality)
    else:  # JPEG, then resize + sinc
        img = jpeg(img.clamp(0, 1), quality)
        img = resize_to(img, out_size, mode)
        img = filter2d(img, sinc) if sinc is not None else img
    return (img * 255).round().clamp(0, 255) / 255  # 8-bit, as a real input file


def bicubic(hq: Tensor, scale: int) -> Tensor:
    """Plain antialiased bicubic downscale by `scale`, quantised to 8 bits."""
    h, w = hq.shape[-2:]
    lq = resize_to(hq, (h // scale, w // scale), "bicubic")
    return (lq.clamp(0, 1) * 255).round() / 255


def degrade(hq: Tensor, cfg: DegradeConfig, rng: np.random.Generator) -> Tensor:
    """Dispatch on `cfg.kind`. hq: [3, H, W] in [0, 1], H and W multiples of cfg.scale."""
    if hq.ndim != 3 or hq.shape[0] != 3:
        raise ValueError(f"expected one RGB image [3, H, W], got shape {tuple(hq.shape)}")
    if cfg.kind == "bicubic":
        return bicubic(hq, cfg.scale)
    return second_order(hq, cfg, rng)
