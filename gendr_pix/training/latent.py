"""The latent models of the distillation recipe: the teacher (VAE16 + latent UNet) and the stage-I
student (pixel-unshuffled image -> teacher latent).

Both are stored as safetensors with a JSON header under metadata key `gendr_pix_latent`:
`{"kind": "teacher"|"stage1", "unet": UNetConfig, "vae": VAEConfig (teacher only), "prediction",
"timestep", "alpha_bar"}`; tensors `unet.*`, `vae.*` (teacher), `positive`, `negative`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, safe_open, save_file
from torch import Tensor, nn

from gendr_pix import SHUFFLE, VAE, UNet, UNetConfig, VAEConfig
from gendr_pix.model import prediction_to_sample

METADATA_KEY = "gendr_pix_latent"


@dataclass(frozen=True, kw_only=True)
class OneStep:
    """How a one-step UNet's output becomes the clean signal (see ModelConfig)."""

    prediction: str = "epsilon"
    timestep: float = 354.0
    alpha_bar: float = 0.5


class LatentTeacher(nn.Module):
    """GenDR-style latent one-step SR: LQ image (resized to output size) -> (HQ latent, HQ image)."""

    def __init__(self, unet: UNetConfig, vae: VAEConfig, step: OneStep, context_tokens: int = 77) -> None:
        super().__init__()
        if unet.in_channels != vae.latent_channels or unet.out_channels != vae.latent_channels:
            raise ValueError(f"teacher UNet channels {unet.in_channels}/{unet.out_channels} do not match the "
                             f"VAE's {vae.latent_channels} latent channels")
        self.unet, self.vae, self.step = UNet(unet), VAE(vae), step
        self.positive = nn.Parameter(torch.zeros(1, context_tokens, unet.context_dim))
        self.negative = nn.Parameter(torch.zeros(1, context_tokens, unet.context_dim))

    def latent(self, x: Tensor) -> Tensor:
        """x: [B, 3, H, W] in [-1, 1] -> HQ latent [B, C, H/8, W/8]."""
        z = self.vae.encode(x)
        t = torch.full((z.shape[0],), self.step.timestep, device=z.device)
        out = self.unet(z, t, self.positive.expand(z.shape[0], -1, -1))
        return prediction_to_sample(z, out, self.step.prediction, self.step.alpha_bar)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.latent(x)
        return z, self.vae.decode(z)


class StageOneStudent(nn.Module):
    """Stage I: the VAE encoder replaced by pixel_unshuffle(8); predicts the teacher's HQ latent directly."""

    def __init__(self, unet: UNetConfig, step: OneStep, context_tokens: int = 77) -> None:
        super().__init__()
        if unet.in_channels != 3 * SHUFFLE * SHUFFLE:
            raise ValueError(f"stage-I student needs {3 * SHUFFLE * SHUFFLE} input channels, got {unet.in_channels}")
        self.unet, self.step = UNet(unet), step
        self.positive = nn.Parameter(torch.zeros(1, context_tokens, unet.context_dim))
        self.negative = nn.Parameter(torch.zeros(1, context_tokens, unet.context_dim))

    def forward(self, x: Tensor) -> Tensor:
        z = F.pixel_unshuffle(x, SHUFFLE)
        t = torch.full((z.shape[0],), self.step.timestep, device=z.device)
        return self.unet(z, t, self.positive.expand(z.shape[0], -1, -1))


def student_from_teacher(teacher: LatentTeacher) -> StageOneStudent:
    """Stage-I init: the teacher's UNet with a new conv_in (192 pixel channels instead of the latent ones)."""
    cfg = dataclasses.replace(teacher.unet.config, in_channels=3 * SHUFFLE * SHUFFLE)
    student = StageOneStudent(cfg, teacher.step, teacher.positive.shape[1])
    sd = {k: v for k, v in teacher.unet.state_dict().items() if not k.startswith("conv_in.")}
    student.unet.load_state_dict(sd, strict=False)
    student.positive.data.copy_(teacher.positive.data)
    student.negative.data.copy_(teacher.negative.data)
    return student


def save_latent(model: LatentTeacher | StageOneStudent, path: str | os.PathLike) -> None:
    kind = "teacher" if isinstance(model, LatentTeacher) else "stage1"
    header = {"kind": kind, "unet": dataclasses.asdict(model.unet.config), **dataclasses.asdict(model.step)}
    tensors = {f"unet.{k}": v for k, v in model.unet.state_dict().items()}
    if kind == "teacher":
        header["vae"] = dataclasses.asdict(model.vae.config)
        tensors.update({f"vae.{k}": v for k, v in model.vae.state_dict().items()})
    tensors["positive"], tensors["negative"] = model.positive.data, model.negative.data
    tensors = {k: v.detach().cpu().float().contiguous() for k, v in tensors.items()}
    save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(header)})


def load_latent(path: str | os.PathLike, expect: str) -> LatentTeacher | StageOneStudent:
    """Load a teacher (`expect="teacher"`) or stage-I student (`"stage1"`). Raises ValueError naming the file."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if METADATA_KEY not in meta:
        raise ValueError(f"{path}: not a GenDR-Pix latent model file (no '{METADATA_KEY}' metadata); expected {expect}")
    header = json.loads(meta[METADATA_KEY])
    if header.get("kind") != expect:
        raise ValueError(f"{path}: holds a {header.get('kind')!r} model, expected {expect!r}")
    unet = UNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in header["unet"].items()})
    step = OneStep(prediction=header["prediction"], timestep=header["timestep"], alpha_bar=header["alpha_bar"])
    tensors = load_file(str(path))
    tokens = tensors["positive"].shape[1]
    if expect == "teacher":
        vae = VAEConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in header["vae"].items()})
        model = LatentTeacher(unet, vae, step, tokens)
    else:
        model = StageOneStudent(unet, step, tokens)
    model.load_state_dict(tensors, strict=True)
    return model
