"""The pixel-space one-step model: pixel-unshuffle -> UNet -> pixel-shuffle, no VAE."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import SHUFFLE, ModelConfig
from .padding import crop, pads_to_multiple, reflect_pad
from .unet import UNet

Condition = Literal["positive", "negative"]


def prediction_to_sample(x_t: Tensor, out: Tensor, prediction: str, alpha_bar: float) -> Tensor:
    """Convert the UNet output at one noise level to the clean signal x0.

    With x_t = sqrt(a) x0 + sqrt(1-a) eps (a = alpha_bar):
    epsilon: x0 = (x_t - sqrt(1-a) eps) / sqrt(a);  v: x0 = sqrt(a) x_t - sqrt(1-a) v;  sample: x0 = out.
    One-step SR feeds the degraded input as x_t (OSEDiff, GenDR).
    """
    a = torch.tensor(alpha_bar, dtype=torch.float64)
    sa, s1a = a.sqrt().item(), (1 - a).sqrt().item()
    if prediction == "epsilon":
        return (x_t - s1a * out) / sa
    if prediction == "v":
        return sa * x_t - s1a * out
    if prediction == "sample":
        return out
    raise ValueError(f"unknown prediction type {prediction!r}")


class GenDRPix(nn.Module):
    """One-step pixel-space SR network: image [B, 3, H, W] in [-1, 1] -> restored image, same size.

    The input is the low-resolution image already resized to the output size. Any H, W >= 1 work:
    the image is reflect-padded to `config.unet.pixel_multiple` and cropped back. The output is not
    clamped, so training sees the raw values.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.unet = UNet(config.unet)
        shape = (1, config.context_tokens, config.unet.context_dim)
        # Learned (or precomputed) prompt embeddings: no text encoder at inference (GenDR).
        self.positive = nn.Parameter(torch.zeros(shape))
        self.negative = nn.Parameter(torch.zeros(shape))
        self.source = ""  # where the weights came from (a file path, set by `load_model`), for error messages

    def context(self, condition: Condition) -> Tensor:
        if condition == "positive":
            return self.positive
        if condition == "negative":
            return self.negative
        raise ValueError(f"condition must be 'positive' or 'negative', got {condition!r}")

    def forward(self, x: Tensor, context: Tensor | Condition = "positive") -> Tensor:
        """x: [B, 3, H, W] in [-1, 1]; context: [1 or B, L, context_dim] or a stored condition's name."""
        if isinstance(context, str):
            context = self.context(context)
        cfg = self.config
        pads = pads_to_multiple(x.shape[-2], x.shape[-1], cfg.unet.pixel_multiple)
        z = F.pixel_unshuffle(reflect_pad(x, pads), SHUFFLE)  # the padded copy dies here
        dtype = self.dtype
        # Conditioning from a graph or a caller may sit on the CPU in float32: follow the model.
        context = context.to(z.device, dtype).expand(z.shape[0], -1, -1)
        t = torch.full((z.shape[0],), cfg.timestep, device=z.device)
        # The UNet runs in the weights' dtype and memory format; the x0 conversion runs in the
        # input's dtype (`upscale()` passes the model's dtype; training and eval pass float32).
        out = self.unet(z.to(dtype, memory_format=self.memory_format), t, context)
        z0 = prediction_to_sample(z, out.to(z.dtype), cfg.prediction, cfg.alpha_bar)
        return crop(F.pixel_shuffle(z0.contiguous(), SHUFFLE), pads)

    @property
    def device(self) -> torch.device:
        return self.positive.device

    @property
    def dtype(self) -> torch.dtype:
        return self.positive.dtype

    @property
    def memory_format(self) -> torch.memory_format:
        """channels_last when the model was converted with `.to(memory_format=torch.channels_last)`
        (faster with bf16/fp16 on CPUs and tensor-core GPUs); inputs are then converted to match."""
        w = self.unet.conv_in.weight
        return torch.channels_last if w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() \
            else torch.contiguous_format
