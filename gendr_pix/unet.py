"""SD2.1-topology UNet, configurable by `UNetConfig`.

Module names follow the diffusers `UNet2DConditionModel` state-dict layout, which is this package's
canonical layout (`layouts.py` maps the original LDM layout onto it). The network is the same as
SD2.1's; only the widths, levels and channel counts come from the config.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .callbacks import block_done, stop_point
from .config import UNetConfig

FF_CHUNK_TOKENS = 8192
"""Feed-forward layers run over at most this many tokens at a time at inference. Their 8x-wide GEGLU
activation is the largest tensor in the network (at 4K output with `sd21`: 130k tokens x 2560 channels);
chunking bounds it without changing the result. 0 = no chunking."""

ATTENTION_CHUNK_MACS = 2**33
"""On a CPU at inference, attention runs over chunks of query rows of at most this many multiply-adds
(rows x keys x width) each, with a stop check between them: one call over 16k tokens (4096x4096 output
with `small`) took 2.5 s on a 2-core CPU, and 65k tokens 16 times that. Query rows are independent,
so the result is the same; chunks of this size cost no measurable time there. Not on GPUs: their
passes are queued asynchronously, so a check there could not stop a running kernel anyway."""


CONV_CHUNK_MACS = 2**32
"""On a CPU at inference, a residual block's 3x3 convolutions run over stripes of output rows of at most
this many multiply-adds each, with a stop check between them: at 4096x4096 output one convolution of
the top level takes over a second on a 2-core CPU, and more at larger sizes, so without stripes the
time a stop request waits would grow with the image. Each stripe reads its rows plus one row above
and below, so the result is the same. Not on GPUs (see ATTENTION_CHUNK_MACS)."""


def _conv3x3(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """`conv(x)` for a 3x3, stride-1, padding-1 convolution; in stripes of rows on a CPU (CONV_CHUNK_MACS)."""
    n, c, h, w = x.shape
    macs_per_row = w * c * conv.out_channels * 9 * n
    rows = h if x.device.type != "cpu" or not _inference() else max(1, CONV_CHUNK_MACS // macs_per_row)
    if rows >= h:
        return conv(x)
    out = x.new_empty(n, conv.out_channels, h, w)
    for top in range(0, h, rows):
        stop_point()
        bottom = min(h, top + rows)
        lo, hi = max(0, top - 1), min(h, bottom + 1)
        stripe = F.pad(x[..., lo:hi, :], (1, 1, 1 if top == 0 else 0, 1 if bottom == h else 0))
        out[..., top:bottom, :] = F.conv2d(stripe, conv.weight, conv.bias)
    return out


def _inference() -> bool:
    """True when no autograd graph is recorded: in-place ops on fresh temporaries are then safe and
    save one full-size buffer each (autograd would need the originals)."""
    return not torch.is_grad_enabled()


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding [B] -> [B, dim] as in LDM: cos first, then sin (diffusers flip_sin_to_cos)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class TimestepEmbedding(nn.Module):
    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class ResnetBlock(nn.Module):
    """GroupNorm-SiLU-Conv twice, with the timestep embedding added in between."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch, eps=1e-5)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time_emb_proj = nn.Linear(emb_dim, out_ch)
        self.norm2 = nn.GroupNorm(groups, out_ch, eps=1e-5)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        inplace = _inference()
        h = _conv3x3(self.conv1, F.silu(self.norm1(x), inplace=inplace))
        stop_point()  # halves the longest stretch without a check: a block at the top level of a 4K pass
        temb = self.time_emb_proj(F.silu(emb))[:, :, None, None]
        h = h.add_(temb) if inplace else h + temb
        h = _conv3x3(self.conv2, F.silu(self.norm2(h), inplace=inplace))
        skip = x if self.conv_shortcut is None else self.conv_shortcut(x)
        return h.add_(skip) if inplace else skip + h


class Attention(nn.Module):
    """Multi-head attention; self-attention when `context` is None."""

    def __init__(self, dim: int, context_dim: int | None, head_dim: int) -> None:
        super().__init__()
        self.heads = dim // head_dim
        kv_dim = context_dim or dim
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(kv_dim, dim, bias=False)
        self.to_v = nn.Linear(kv_dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])  # diffusers key: to_out.0

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        kv = x if context is None else context
        q, k, v = (
            rearrange(t, "b n (h d) -> b h n d", h=self.heads)
            for t in (self.to_q(x), self.to_k(kv), self.to_v(kv))
        )
        return self.to_out[0](rearrange(_attention(q, k, v), "b h n d -> b n (h d)"))


def _attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Scaled dot-product attention on [B, heads, N, d], in chunks of query rows on a CPU (see
    ATTENTION_CHUNK_MACS) with a stop check before each."""
    n = q.shape[-2]
    rows = n
    if q.device.type == "cpu" and _inference():
        rows = max(1, ATTENTION_CHUNK_MACS // (k.shape[-2] * q.shape[1] * q.shape[-1]))
    if rows >= n:
        return F.scaled_dot_product_attention(q, k, v)
    out = q.new_empty(*q.shape[:-1], v.shape[-1])
    for start in range(0, n, rows):
        stop_point()
        out[..., start:start + rows, :] = F.scaled_dot_product_attention(q[..., start:start + rows, :], k, v)
    return out


class GEGLU(nn.Module):
    def __init__(self, dim: int, inner: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, 2 * inner)

    def forward(self, x: Tensor) -> Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        # Index 1 is diffusers' dropout; keeping the slot keeps the key `net.2`.
        self.net = nn.ModuleList([GEGLU(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim)])
        self.chunk_tokens = FF_CHUNK_TOKENS

    def _mlp(self, x: Tensor) -> Tensor:
        for layer in self.net:
            x = layer(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, N, dim]. Tokens are independent here, so chunks over N give the same result."""
        n, chunk = x.shape[1], self.chunk_tokens
        if not chunk or n <= chunk or not _inference():
            return self._mlp(x)
        out = torch.empty_like(x)
        for start in range(0, n, chunk):
            out[:, start:start + chunk] = self._mlp(x[:, start:start + chunk])
        return out


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, context_dim: int, head_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, None, head_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, context_dim, head_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class Transformer2D(nn.Module):
    """SD's spatial transformer: image grid -> tokens -> transformer blocks -> grid, residual."""

    def __init__(self, dim: int, cfg: UNetConfig) -> None:
        super().__init__()
        self.linear = cfg.linear_projection
        self.norm = nn.GroupNorm(cfg.norm_groups, dim, eps=1e-6)
        proj = (lambda: nn.Linear(dim, dim)) if self.linear else (lambda: nn.Conv2d(dim, dim, 1))
        self.proj_in = proj()
        self.transformer_blocks = nn.ModuleList(
            TransformerBlock(dim, cfg.context_dim, cfg.head_dim) for _ in range(cfg.transformer_depth)
        )
        self.proj_out = proj()

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        _, _, h, w = x.shape
        t = self.norm(x)
        if not self.linear:
            t = self.proj_in(t)
        t = rearrange(t, "b c h w -> b (h w) c")
        if self.linear:
            t = self.proj_in(t)
        for block in self.transformer_blocks:
            t = block(t, context)
        if self.linear:
            t = self.proj_out(t)
        t = rearrange(t, "b (h w) c -> b c h w", h=h, w=w)
        if not self.linear:
            t = self.proj_out(t)
        return t.add_(x) if _inference() else x + t


class Downsample(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """One resolution level of the down or up path: residual blocks, optional transformers, resampler."""

    def __init__(
        self, in_chs: list[int], out_ch: int, emb_dim: int, cfg: UNetConfig,
        attention: bool, resample: type[nn.Module] | None,
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock(c, out_ch, emb_dim, cfg.norm_groups) for c in in_chs)
        if attention:
            self.attentions = nn.ModuleList(Transformer2D(out_ch, cfg) for _ in in_chs)
        if resample is not None:
            name = "downsamplers" if resample is Downsample else "upsamplers"
            setattr(self, name, nn.ModuleList([resample(out_ch)]))

    def blocks(self):
        attentions = getattr(self, "attentions", None)
        for i, resnet in enumerate(self.resnets):
            yield resnet, (attentions[i] if attentions is not None else None)

    def resampler(self) -> nn.Module | None:
        for name in ("downsamplers", "upsamplers"):
            if hasattr(self, name):
                return getattr(self, name)[0]
        return None


class MidBlock(nn.Module):
    def __init__(self, ch: int, emb_dim: int, cfg: UNetConfig) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock(ch, ch, emb_dim, cfg.norm_groups) for _ in range(2))
        if cfg.mid_attention:
            self.attentions = nn.ModuleList([Transformer2D(ch, cfg)])

    def forward(self, h: Tensor, emb: Tensor, context: Tensor) -> Tensor:
        h = self.resnets[0](h, emb)
        block_done()
        if hasattr(self, "attentions"):
            h = self.attentions[0](h, context)
            block_done()
        h = self.resnets[1](h, emb)
        block_done()
        return h


class UNet(nn.Module):
    """SD2.1-topology UNet: (x [B, in, h, w], timestep [B], context [B, L, ctx]) -> [B, out, h, w].

    h and w must be multiples of `config.grid_multiple`.
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = cfg = config
        chs, emb_dim = cfg.block_channels, cfg.time_embed_dim
        self.conv_in = nn.Conv2d(cfg.in_channels, chs[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(chs[0], emb_dim)

        skip_chs = [chs[0]]
        self.down_blocks = nn.ModuleList()
        ch = chs[0]
        for level, (out_ch, attn) in enumerate(zip(chs, cfg.attention_levels)):
            last = level == cfg.levels - 1
            in_chs = [ch] + [out_ch] * (cfg.layers_per_block - 1)
            self.down_blocks.append(Level(in_chs, out_ch, emb_dim, cfg, attn, None if last else Downsample))
            ch = out_ch
            skip_chs += [out_ch] * (cfg.layers_per_block + (0 if last else 1))

        self.mid_block = MidBlock(ch, emb_dim, cfg)

        self.up_blocks = nn.ModuleList()
        for level in reversed(range(cfg.levels)):
            out_ch = chs[level]
            in_chs = []
            for _ in range(cfg.layers_per_block + 1):
                in_chs.append(ch + skip_chs.pop())
                ch = out_ch
            resample = Upsample if level > 0 else None
            self.up_blocks.append(Level(in_chs, out_ch, emb_dim, cfg, cfg.attention_levels[level], resample))

        self.conv_norm_out = nn.GroupNorm(cfg.norm_groups, ch, eps=1e-5)
        self.conv_out = nn.Conv2d(ch, cfg.out_channels, 3, padding=1)

    def set_ff_chunk(self, tokens: int) -> None:
        """Feed-forward chunk size in tokens for inference (0 = whole sequence); see FF_CHUNK_TOKENS."""
        if tokens < 0:
            raise ValueError(f"ff chunk must be >= 0 tokens, got {tokens}")
        for module in self.modules():
            if isinstance(module, FeedForward):
                module.chunk_tokens = tokens

    def encode(self, x: Tensor, timestep: Tensor, context: Tensor) -> tuple[Tensor, Tensor, list[Tensor], list[Tensor]]:
        """conv_in, the down path and the middle block.

        Returns (h, emb, skips, features): the bottleneck, the timestep embedding, the skip tensors the
        up path consumes, and per level the activation before its downsampler plus the middle block's
        output (the features stage-II training judges with; they are skips already, so free to keep).
        """
        emb = self.time_embedding(timestep_embedding(timestep, self.config.block_channels[0]).to(x.dtype))
        h = self.conv_in(x)
        skips, features = [h], []
        for level in self.down_blocks:
            for resnet, attn in level.blocks():
                h = resnet(h, emb)
                block_done()
                if attn is not None:
                    h = attn(h, context)
                    block_done()
                skips.append(h)
            features.append(h)
            down = level.resampler()
            if down is not None:
                h = down(h)
                block_done()
                skips.append(h)
        h = self.mid_block(h, emb, context)
        features.append(h)
        return h, emb, skips, features

    def forward(self, x: Tensor, timestep: Tensor, context: Tensor) -> Tensor:
        # Slicing drops the feature list at once: it would keep every skip alive through the up path.
        h, emb, skips = self.encode(x, timestep, context)[:3]
        for level in self.up_blocks:
            for resnet, attn in level.blocks():
                # Rebinding h before the block frees the previous activation during it.
                h = torch.cat([h, skips.pop()], dim=1)
                h = resnet(h, emb)
                block_done()
                if attn is not None:
                    h = attn(h, context)
                    block_done()
            up = level.resampler()
            if up is not None:
                h = up(h)
                block_done()
        h = self.conv_out(F.silu(self.conv_norm_out(h), inplace=_inference()))
        block_done()
        return h

    @property
    def steps_per_pass(self) -> int:
        """How often one forward calls `block_done()`: after each residual block, transformer and
        resampler (each runs once per pass), and after the output convolution."""
        return 1 + sum(isinstance(m, (ResnetBlock, Transformer2D, Downsample, Upsample)) for m in self.modules())
