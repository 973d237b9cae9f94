"""Toy teacher and configs for the stage tests (a few thousand parameters, 64 px crops)."""

from __future__ import annotations

import torch

from gendr_pix import UNetConfig, VAEConfig
from gendr_pix.training.config import config_from_dict
from gendr_pix.training.data import DataConfig, PairDataset
from gendr_pix.training.degrade import DegradeConfig
from gendr_pix.training.latent import LatentTeacher, OneStep, save_latent

LATENT = 4


def toy_teacher(path, seed: int = 0) -> LatentTeacher:
    torch.manual_seed(seed)
    unet = UNetConfig(in_channels=LATENT, out_channels=LATENT, block_channels=(32, 64), layers_per_block=1,
                      attention_levels=(False, True), head_dim=16, context_dim=32, norm_groups=8)
    vae = VAEConfig(block_channels=(8, 8, 16, 16), layers_per_block=1, latent_channels=LATENT, norm_groups=4)
    teacher = LatentTeacher(unet, vae, OneStep(), context_tokens=2)
    torch.nn.init.normal_(teacher.positive, std=0.5)
    save_latent(teacher, path)
    return teacher


def toy_config(tmp_path, photos, mode: str = "pixel", **sections):
    data = {
        "run": {"dir": str(tmp_path / f"run_{mode}"), "mode": mode, "steps": 4, "batch": 2, "lr": 1e-3,
                "lr_d": 1e-3, "warmup": 1, "ema": 0.5, "log_every": 1, "sample_every": 2, "save_every": 2,
                "workers": 0, "seed": 0},
        "model": {"preset": "tiny", "context_tokens": 2},
        "data": {"folder": str(photos), "crop": 64, "seed": 0},
        "loss": {"perceptual": 1.0, "adversarial": 0.05, "adversarial_start": 0, "fourier": 0.1,
                 "negative_share": 0.5},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return config_from_dict(data)


def fixed_batch(photos, n: int = 2) -> dict:
    ds = PairDataset(DataConfig(folder=str(photos), crop=64, seed=1), DegradeConfig())
    items = [ds[i] for i in range(n)]
    return {"hq": torch.stack([i["hq"] for i in items]), "lq": torch.stack([i["lq"] for i in items])}
