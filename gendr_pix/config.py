"""Model configurations: the UNet shape, the one-step denoising spec, and named presets.

Configs are frozen, keyword-only dataclasses. They are stored as JSON in checkpoint metadata, so every
field is a plain number, string, bool or tuple of those.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

SHUFFLE = 8
"""Pixel (un)shuffle factor that replaces the VAE: RGB at full size <-> 3*8*8 = 192 channels at 1/8."""

PIXEL_CHANNELS = 3 * SHUFFLE * SHUFFLE

Prediction = Literal["epsilon", "v", "sample"]
PREDICTIONS: tuple[str, ...] = ("epsilon", "v", "sample")

# SD's scaled-linear schedule reaches alpha_bar = 0.5 at t = 354; GenDR fixes its one step there.
GENDR_TIMESTEP = 354.0
GENDR_ALPHA_BAR = 0.5


class ConfigError(ValueError):
    """A configuration value is out of range or inconsistent with another one."""


ConfigError.__module__ = "gendr_pix"  # printed as gendr_pix.ConfigError (its public name) in error dialogs


@dataclass(frozen=True, kw_only=True)
class UNetConfig:
    """Shape of an SD2.1-topology UNet.

    Defaults are the GenDR-Pix network: SD2.1's UNet with 192 input/output channels (867.0M params).
    """

    in_channels: int = PIXEL_CHANNELS
    """Channels of the input grid (192 = RGB pixel-unshuffled by 8)."""
    out_channels: int = PIXEL_CHANNELS
    """Channels of the output grid (192 = RGB to be pixel-shuffled by 8)."""
    block_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    """Width of each resolution level, top (full grid) first. Each level after the first halves H, W."""
    layers_per_block: int = 2
    """Residual blocks per level on the way down (the way up has one more, for the extra skip)."""
    attention_levels: tuple[bool, ...] = (True, True, True, False)
    """Which levels carry a transformer (self- and cross-attention) after each residual block."""
    mid_attention: bool = True
    """Whether the bottleneck has a transformer between its two residual blocks."""
    head_dim: int = 64
    """Channels per attention head (SD2.1: 64); heads = width // head_dim."""
    transformer_depth: int = 1
    """Transformer blocks per attention layer."""
    context_dim: int = 1024
    """Width of the cross-attention context (the prompt embeddings)."""
    linear_projection: bool = True
    """Transformer proj_in/proj_out as Linear (SD2.x) rather than 1x1 Conv (SD1.x)."""
    norm_groups: int = 32
    """GroupNorm groups in residual blocks and transformers."""

    def __post_init__(self) -> None:
        levels = len(self.block_channels)
        if levels < 1:
            raise ConfigError("block_channels must name at least one level")
        if len(self.attention_levels) != levels:
            raise ConfigError(
                f"attention_levels has {len(self.attention_levels)} entries, block_channels {levels}"
            )
        if self.layers_per_block < 1 or self.transformer_depth < 1:
            raise ConfigError("layers_per_block and transformer_depth must be >= 1")
        for width in self.block_channels:
            if width % self.norm_groups:
                raise ConfigError(f"width {width} is not divisible by norm_groups={self.norm_groups}")
        attended = [w for w, a in zip(self.block_channels, self.attention_levels) if a]
        if self.mid_attention:
            attended.append(self.block_channels[-1])
        for width in attended:
            if width % self.head_dim:
                raise ConfigError(f"width {width} is not divisible by head_dim={self.head_dim}")

    @property
    def levels(self) -> int:
        return len(self.block_channels)

    @property
    def time_embed_dim(self) -> int:
        """Width of the timestep embedding MLP (SD: 4x the first level's width)."""
        return 4 * self.block_channels[0]

    @property
    def grid_multiple(self) -> int:
        """The input grid's H and W must be multiples of this (one halving per level below the top)."""
        return 2 ** (self.levels - 1)

    @property
    def pixel_multiple(self) -> int:
        """Image H and W the pixel-space model needs: the grid multiple times the shuffle factor."""
        return SHUFFLE * self.grid_multiple


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Everything needed to rebuild a pixel-space one-step model besides its weights."""

    unet: UNetConfig = field(default_factory=UNetConfig)
    prediction: Prediction = "epsilon"
    """What the UNet outputs: the noise ("epsilon"), the velocity ("v") or the clean image ("sample")."""
    timestep: float = GENDR_TIMESTEP
    """Timestep fed to the UNet's embedding for the single step."""
    alpha_bar: float = GENDR_ALPHA_BAR
    """Cumulative signal fraction at that step; converts epsilon/v predictions to the clean image."""
    scale: float = 4.0
    """Upscale factor the model was trained for; the default when the caller names none."""
    context_tokens: int = 77
    """Length of the positive/negative prompt embeddings stored with the model."""
    description: str = ""
    """Free text: where the weights come from, licence, training data."""

    def __post_init__(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise ConfigError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if not 0.0 < self.alpha_bar <= 1.0:
            raise ConfigError(f"alpha_bar must be in (0, 1], got {self.alpha_bar}")
        if self.prediction == "epsilon" and self.alpha_bar == 1.0:
            raise ConfigError("epsilon prediction needs alpha_bar < 1 to recover the image")
        if not 1.0 <= self.scale <= 8.0:
            raise ConfigError(f"scale must be in [1, 8], got {self.scale}")
        if self.unet.in_channels != PIXEL_CHANNELS or self.unet.out_channels != PIXEL_CHANNELS:
            raise ConfigError(
                f"a pixel-space model needs {PIXEL_CHANNELS} in/out channels (RGB x {SHUFFLE}x{SHUFFLE}), "
                f"got {self.unet.in_channels}/{self.unet.out_channels}"
            )
        if self.context_tokens < 1:
            raise ConfigError("context_tokens must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of to_dict. Raises ConfigError on unknown or malformed fields."""
        data = dict(data)
        unet = _dataclass_from_dict(UNetConfig, data.pop("unet", {}))
        return _dataclass_from_dict(cls, data, unet=unet)


def _dataclass_from_dict(cls: type, data: dict[str, Any], **extra: Any) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} fields: {', '.join(unknown)}")
    # JSON has no tuples; our configs only use tuples for sequences.
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return cls(**values, **extra)
    except TypeError as e:
        raise ConfigError(f"bad {cls.__name__}: {e}") from None


UNET_PRESETS: dict[str, UNetConfig] = {
    # The GenDR-Pix network: SD2.1's UNet on 192-channel pixel-unshuffled RGB.
    "sd21": UNetConfig(),
    # The shipped default model: no attention on the two large grids, so a 4K output stays cheap on
    # a CPU; cross-attention at the deep levels carries the positive/negative condition.
    "small": UNetConfig(
        block_channels=(64, 128, 128, 192),
        attention_levels=(False, False, True, True),
        head_dim=32,
        context_dim=256,
    ),
    # For tests: a few thousand parameters, every code path (attention, skips, up/down sampling).
    "tiny": UNetConfig(
        block_channels=(32, 64),
        layers_per_block=1,
        attention_levels=(False, True),
        head_dim=16,
        context_dim=32,
        norm_groups=8,
    ),
}
