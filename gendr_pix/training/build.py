"""Build a mode's objective (generator, discriminator, frozen networks) from a TrainConfig."""

from __future__ import annotations

import dataclasses
import logging

import torch
from torch import nn

from gendr_pix import UNET_PRESETS, GenDRPix, ModelConfig, load_model

from .config import TrainConfig
from .discriminators import alex_discriminator, unet_discriminator
from .latent import LatentTeacher, StageOneStudent, load_latent, student_from_teacher
from .objectives import PixelObjective, StageOneObjective
from .perceptual import DISTS, LPIPS

log = logging.getLogger(__name__)


def model_config(cfg: TrainConfig, unet=None) -> ModelConfig:
    m = cfg.model
    if unet is None:
        if m.preset not in UNET_PRESETS:
            raise ValueError(f"model.preset must be one of {sorted(UNET_PRESETS)}, got {m.preset!r}")
        over = {k: tuple(v) if isinstance(v, list) else v for k, v in m.unet.items()}
        unet = dataclasses.replace(UNET_PRESETS[m.preset], **over)
    return ModelConfig(unet=unet, prediction=m.prediction, timestep=m.timestep, alpha_bar=m.alpha_bar,
                       scale=float(cfg.degrade.scale), context_tokens=m.context_tokens, description=m.description)


def init_pixel_model(config: ModelConfig, seed: int, embedding_std: float = 1.0) -> GenDRPix:
    """Fresh model whose conv_out starts at zero, so the first output is the (rescaled) input."""
    torch.manual_seed(seed)
    model = GenDRPix(config)
    nn.init.zeros_(model.unet.conv_out.weight)
    nn.init.zeros_(model.unet.conv_out.bias)
    nn.init.normal_(model.positive, std=embedding_std)
    nn.init.normal_(model.negative, std=embedding_std)
    return model


def _teacher(cfg: TrainConfig) -> LatentTeacher:
    if not cfg.teacher.path:
        raise ValueError(f"run.mode={cfg.run.mode!r} needs teacher.path (a latent teacher file)")
    return load_latent(cfg.teacher.path, "teacher").requires_grad_(False).eval()


def _perceptual(cfg: TrainConfig) -> nn.Module | None:
    return LPIPS(cfg.loss.perceptual_net) if cfg.loss.perceptual else None


def _dists(cfg: TrainConfig) -> nn.Module | None:
    return DISTS() if cfg.loss.dists else None


def build_objective(cfg: TrainConfig):
    """Returns the objective; its `.generator` is the trainable network."""
    mode = cfg.run.mode
    if mode == "stage1":
        teacher = _teacher(cfg)
        student = student_from_teacher(teacher)
        disc = unet_discriminator(teacher.unet, teacher.step.timestep, teacher.positive, unshuffle=False) \
            if cfg.loss.adversarial else None
        return StageOneObjective(student, teacher, cfg.loss, disc)
    if mode == "stage2":
        teacher = _teacher(cfg)
        if not cfg.teacher.stage1:
            raise ValueError("run.mode='stage2' needs teacher.stage1 (the stage-I student file)")
        stage1 = load_latent(cfg.teacher.stage1, "stage1")
        model = stage_two_model(cfg, stage1)
        # The paper's discriminator for stage II is the stage-I model itself, judging images.
        disc = unet_discriminator(stage1.unet, stage1.step.timestep, stage1.positive, unshuffle=True) \
            if cfg.loss.adversarial else None
        return PixelObjective(model, cfg.loss, perceptual=_perceptual(cfg), discriminator=disc,
                              target_fn=lambda x: teacher(x)[1], dists=_dists(cfg))
    model = load_model(cfg.model.init).train().requires_grad_(True) if cfg.model.init \
        else init_pixel_model(model_config(cfg), cfg.run.seed, cfg.model.embedding_std)
    target_fn = None
    if cfg.teacher.path:
        teacher = _teacher(cfg)
        target_fn = lambda x: teacher(x)[1]  # noqa: E731
    disc = alex_discriminator() if cfg.loss.adversarial else None
    return PixelObjective(model, cfg.loss, perceptual=_perceptual(cfg), discriminator=disc, target_fn=target_fn,
                          dists=_dists(cfg))


def stage_two_model(cfg: TrainConfig, stage1: StageOneStudent) -> GenDRPix:
    """Stage-II init: the stage-I UNet with a new, zero-initialised conv_out to 192 pixel channels."""
    unet_cfg = dataclasses.replace(stage1.unet.config, out_channels=stage1.unet.config.in_channels)
    config = dataclasses.replace(model_config(cfg, unet=unet_cfg), context_tokens=stage1.positive.shape[1])
    model = init_pixel_model(config, cfg.run.seed, cfg.model.embedding_std)
    sd = {k: v for k, v in stage1.unet.state_dict().items() if not k.startswith("conv_out.")}
    missing, unexpected = model.unet.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.startswith("conv_out.") for k in missing), (missing, unexpected)
    model.positive.data.copy_(stage1.positive.data)
    model.negative.data.copy_(stage1.negative.data)
    return model
