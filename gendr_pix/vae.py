"""The 16-channel f8 VAE that latent GenDR uses (`ostris/vae-kl-f8-d16`, diffusers AutoencoderKL layout).

GenDR-Pix exists to remove this network. It is here for two reasons only: the latent baseline in the
benchmark (which is honest only if this has the real shape, ~57.3M parameters) and stage I of the
distillation recipe, whose teacher works in this latent space. It never runs in our inference path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


@dataclass(frozen=True, kw_only=True)
class VAEConfig:
    """Shape of a diffusers AutoencoderKL. Defaults: ostris/vae-kl-f8-d16."""

    block_channels: tuple[int, ...] = (128, 128, 256, 512)
    """Encoder widths, full resolution first; each level but the last halves H and W (f8 for 4 levels)."""
    layers_per_block: int = 2
    """Residual blocks per encoder level (the decoder has one more)."""
    latent_channels: int = 16
    norm_groups: int = 32
    scaling_factor: float = 0.2444742
    """Latents are multiplied by this after encoding (value from the ostris config)."""

    @property
    def downscale(self) -> int:
        return 2 ** (len(self.block_channels) - 1)


class VAEResnetBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch, eps=1e-6)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, out_ch, eps=1e-6)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class VAEAttention(nn.Module):
    """Single-head self-attention over all pixels of the bottleneck."""

    def __init__(self, ch: int, groups: int) -> None:
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, ch, eps=1e-6)
        self.to_q, self.to_k, self.to_v = nn.Linear(ch, ch), nn.Linear(ch, ch), nn.Linear(ch, ch)
        self.to_out = nn.ModuleList([nn.Linear(ch, ch)])

    def forward(self, x: Tensor) -> Tensor:
        _, _, h, w = x.shape
        t = rearrange(self.group_norm(x), "b c h w -> b 1 (h w) c")
        out = F.scaled_dot_product_attention(self.to_q(t), self.to_k(t), self.to_v(t))
        return x + rearrange(self.to_out[0](out), "b 1 (h w) c -> b c h w", h=h, w=w)


class VAEMidBlock(nn.Module):
    def __init__(self, ch: int, groups: int) -> None:
        super().__init__()
        self.resnets = nn.ModuleList([VAEResnetBlock(ch, ch, groups), VAEResnetBlock(ch, ch, groups)])
        self.attentions = nn.ModuleList([VAEAttention(ch, groups)])

    def forward(self, x: Tensor) -> Tensor:
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class EncoderDownsample(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # diffusers pads right/bottom only


class DecoderUpsample(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class VAELevel(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, n: int, groups: int, resample: type[nn.Module] | None) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(VAEResnetBlock(in_ch if i == 0 else out_ch, out_ch, groups) for i in range(n))
        if resample is EncoderDownsample:
            self.downsamplers = nn.ModuleList([resample(out_ch)])
        elif resample is DecoderUpsample:
            self.upsamplers = nn.ModuleList([resample(out_ch)])

    def forward(self, x: Tensor) -> Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        for name in ("downsamplers", "upsamplers"):
            if hasattr(self, name):
                x = getattr(self, name)[0](x)
        return x


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        chs, g = cfg.block_channels, cfg.norm_groups
        self.conv_in = nn.Conv2d(3, chs[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            VAELevel(chs[max(i - 1, 0)], ch, cfg.layers_per_block, g, EncoderDownsample if i < len(chs) - 1 else None)
            for i, ch in enumerate(chs)
        )
        self.mid_block = VAEMidBlock(chs[-1], g)
        self.conv_norm_out = nn.GroupNorm(g, chs[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(chs[-1], 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for level in self.down_blocks:
            h = level(h)
        return self.conv_out(F.silu(self.conv_norm_out(self.mid_block(h))))


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        chs, g = tuple(reversed(cfg.block_channels)), cfg.norm_groups
        self.conv_in = nn.Conv2d(cfg.latent_channels, chs[0], 3, padding=1)
        self.mid_block = VAEMidBlock(chs[0], g)
        self.up_blocks = nn.ModuleList(
            VAELevel(chs[max(i - 1, 0)], ch, cfg.layers_per_block + 1, g, DecoderUpsample if i < len(chs) - 1 else None)
            for i, ch in enumerate(chs)
        )
        self.conv_norm_out = nn.GroupNorm(g, chs[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(chs[-1], 3, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid_block(self.conv_in(z))
        for level in self.up_blocks:
            h = level(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class VAE(nn.Module):
    """AutoencoderKL: image [B, 3, H, W] in [-1, 1] <-> scaled latent [B, C, H/f, W/f].

    H and W must be multiples of `config.downscale`.
    """

    def __init__(self, config: VAEConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or VAEConfig()
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quant_conv = nn.Conv2d(2 * cfg.latent_channels, 2 * cfg.latent_channels, 1)
        self.post_quant_conv = nn.Conv2d(cfg.latent_channels, cfg.latent_channels, 1)

    def encode(self, x: Tensor) -> Tensor:
        """Image -> scaled latent (the posterior mean, as one-step SR pipelines use it)."""
        mean, _logvar = self.quant_conv(self.encoder(x)).chunk(2, dim=1)
        return mean * self.config.scaling_factor

    def decode(self, z: Tensor) -> Tensor:
        """Scaled latent -> image in about [-1, 1]."""
        return self.decoder(self.post_quant_conv(z / self.config.scaling_factor))
