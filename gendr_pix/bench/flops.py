"""FLOP counting for the benchmark: traced on the `meta` device, so even a 4K `sd21` pass costs nothing.

Counts follow `torch.utils.flop_counter` (one multiply-add = 2 FLOPs). On `meta`, scaled-dot-product
attention decomposes into batched matmuls, so `bmm` is exactly the attention score and value products
(the UNet and VAE use `bmm` nowhere else); on a real CPU the fused flash kernel would not be counted at
all, which is why we never count on the device that runs. Papers in this line (GenDR-Pix: 344 GMACs at
512x512) count layers only; `layer_flops` is that convention, `total` includes attention.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

_ATTENTION_OPS = ("bmm", "baddbmm", "_scaled_dot_product")
_CONV_OPS = ("convolution",)


@dataclass(frozen=True, kw_only=True)
class FlopCount:
    """FLOPs of one pipeline call, split by kind of operation."""

    total: int
    conv: int
    """Convolutions (including 1x1)."""
    linear: int
    """Dense layers (mm / addmm): projections, feed-forward, embeddings."""
    attention: int
    """Attention products Q K^T and P V (quadratic in tokens)."""

    @property
    def layer_flops(self) -> int:
        """FLOPs without the attention products: the convention of the GenDR-Pix paper's GMACs."""
        return self.total - self.attention


def count_flops(fn: Callable[..., object], *args: object) -> FlopCount:
    """Run `fn(*args)` under a FLOP counter. Pass meta-device modules and tensors (see module doc)."""
    with torch.no_grad(), FlopCounterMode(display=False, depth=0) as counter:
        fn(*args)
    by_op = {str(op).split(".")[-1]: int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    attention = sum(n for op, n in by_op.items() if op.startswith(_ATTENTION_OPS))
    conv = sum(n for op, n in by_op.items() if op.startswith(_CONV_OPS))
    total = sum(by_op.values())
    return FlopCount(total=total, conv=conv, linear=total - conv - attention, attention=attention)
