"""Training losses: L1, the softplus adversarial losses with random padding, and the weighted sum.

The masked Fourier loss lives in `fourier.py`, LPIPS/DISTS in `perceptual.py`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gendr_pix import SHUFFLE, reflect_pad


def l1(output: Tensor, target: Tensor) -> Tensor:
    return (output.float() - target.float()).abs().mean()


def random_pad(x: Tensor, generator: torch.Generator | None = None, period: int = SHUFFLE) -> Tensor:
    """Pad each image by [p_w, 8 - p_w, p_h, 8 - p_h] (reflect), p drawn from 0..7 per image and axis.

    Paper: padding both SR and HQ before the discriminator keeps it from locking onto the phase of
    the 8x8 shuffle grid (a shortcut that collapses the discriminator). Output: [B, C, H+8, W+8].
    """
    ps = torch.randint(0, period, (x.shape[0], 2), generator=generator)
    rows = []
    for img, (ph, pw) in zip(x, ps.tolist()):
        rows.append(reflect_pad(img[None], (pw, period - pw, ph, period - ph)))
    return torch.cat(rows)


def generator_adv_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating GAN loss for the generator: softplus(-D(fake))."""
    return F.softplus(-fake_logits.float()).mean()


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """softplus(-D(real)) + softplus(D(fake))."""
    return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()
