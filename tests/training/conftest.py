"""Shared fixtures: a cache with deterministic stand-in perceptual weights (right shapes, random
values), a folder of small synthetic photos, and toy configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from gendr_pix.training import perceptual
from gendr_pix.training.perceptual import ALEX_CONVS, VGG_STAGES, WEIGHTS_FILE


def fake_perceptual_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    cin = 3
    for i, (cout, k, _, _) in enumerate(ALEX_CONVS):
        out[f"alexnet.{i}.weight"] = torch.randn(cout, cin, k, k, generator=g) * (2 / (cin * k * k)) ** 0.5
        out[f"alexnet.{i}.bias"] = torch.zeros(cout)
        out[f"lpips_alexnet.{i}"] = torch.rand(1, cout, 1, 1, generator=g)
        cin = cout
    cin, i = 3, 0
    for stage in VGG_STAGES:
        for cout in stage:
            out[f"vgg16.{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (2 / (cin * 9)) ** 0.5
            out[f"vgg16.{i}.bias"] = torch.zeros(cout)
            cin, i = cout, i + 1
    for j, c in enumerate(s[-1] for s in VGG_STAGES):
        out[f"lpips_vgg16.{j}"] = torch.rand(1, c, 1, 1, generator=g)
    out["dists.alpha"] = torch.rand(1, 1475, 1, 1, generator=g)
    out["dists.beta"] = torch.rand(1, 1475, 1, 1, generator=g)
    return out


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny models: thread start-up and contention on a shared 2-core box cost more than they gain."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def fake_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    save_file(fake_perceptual_weights(), str(cache / WEIGHTS_FILE))
    return cache


@pytest.fixture
def use_fake_cache(fake_cache, monkeypatch):
    monkeypatch.setenv("GENDR_PIX_CACHE", str(fake_cache))
    perceptual._load.cache_clear()
    yield fake_cache
    perceptual._load.cache_clear()


def smooth_photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A photo-like image: smooth colour gradients plus a few edges and mild texture."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([np.sin(6 * xx + c + rng.uniform(0, 3)) * 0.3 + 0.5 + 0.2 * yy for c in range(3)], -1)
    for _ in range(4):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        img[y0:y0 + h // 4, x0:x0 + w // 5] *= rng.uniform(0.5, 1.0)
    img += rng.normal(0, 0.02, img.shape)
    return (img.clip(0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(smooth_photo(rng, 160 + 16 * i, 192)).save(folder / f"p{i}.png")
    return folder
