"""Discriminators built on frozen feature networks, with small trainable heads.

The paper judges with generative features: stage I's discriminator sits on the frozen teacher UNet
(latent inputs), stage II's on the stage-I model itself (pixel inputs, unshuffled by 8). Our direct
pixel-space mode has neither, so it judges with the frozen ImageNet AlexNet of LPIPS. In every case
only the heads learn, which keeps the discriminator cheap and hard to collapse.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gendr_pix import SHUFFLE, UNet

from .perceptual import AlexFeatures, load_weights


def unet_features(unet: UNet, x: Tensor, timestep: float, context: Tensor) -> list[Tensor]:
    """The UNet's encoder activations: the end of each down level and the middle block."""
    t = torch.full((x.shape[0],), float(timestep), device=x.device)
    context = context.to(x.dtype).expand(x.shape[0], -1, -1)
    return unet.encode(x, t, context)[3]


class Head(nn.Module):
    """Per-feature-map logit head: conv3x3 -> LeakyReLU -> conv1x1, spectrally normalised."""

    def __init__(self, channels: int, width: int = 64) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.net = nn.Sequential(sn(nn.Conv2d(channels, width, 3, padding=1)), nn.LeakyReLU(0.2),
                                 sn(nn.Conv2d(width, 1, 1)))

    def forward(self, f: Tensor) -> Tensor:
        return self.net(f).flatten(1).mean(1)


class FeatureDiscriminator(nn.Module):
    """logits [B] = sum of heads over the frozen backbone's feature maps.

    `backbone(x) -> list of feature maps`; its parameters are frozen here and not part of the heads'
    optimizer (`head_parameters`). Gradients still flow through it to the generator's output.
    """

    def __init__(self, backbone: nn.Module, features: Callable[[Tensor], list[Tensor]], channels: list[int]) -> None:
        super().__init__()
        self.backbone = backbone.requires_grad_(False).eval()
        self._features = features
        self.heads = nn.ModuleList(Head(c) for c in channels)

    def forward(self, x: Tensor) -> Tensor:
        return sum(head(f) for head, f in zip(self.heads, self._features(x)))

    def head_parameters(self):
        return self.heads.parameters()

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()  # frozen: never in training mode
        return self


def alex_discriminator(cache=None) -> FeatureDiscriminator:
    """Pixel mode: frozen LPIPS AlexNet on images in [-1, 1]."""
    backbone = AlexFeatures(load_weights(cache))
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    return FeatureDiscriminator(backbone, lambda x: backbone((x - shift.to(x)) / scale.to(x)), [64, 192, 384, 256, 256])


def unet_discriminator(unet: UNet, timestep: float, context: Tensor, unshuffle: bool) -> FeatureDiscriminator:
    """A discriminator on a frozen UNet's encoder. `unshuffle`: inputs are images (pixel_unshuffle by 8
    first, stage II); otherwise latents (stage I). `context` is the condition the UNet sees."""
    context = context.detach().clone()

    def features(x: Tensor) -> list[Tensor]:
        m = unet.config.grid_multiple * (SHUFFLE if unshuffle else 1)
        x = F.pad(x, (0, -x.shape[-1] % m, 0, -x.shape[-2] % m), mode="reflect")  # randomly padded sizes
        z = F.pixel_unshuffle(x, SHUFFLE) if unshuffle else x
        return unet_features(unet, z, timestep, context.to(z.device))

    chs = list(unet.config.block_channels) + [unet.config.block_channels[-1]]
    return FeatureDiscriminator(unet, features, chs)
