"""What the benchmark runs: the pixel-space pipeline, the latent baseline, and their variants.

pixel   GenDRPix forward: reflect-pad -> pixel_unshuffle(8) -> UNet -> x0 -> pixel_shuffle(8) -> crop.
latent  the same padding, VAE16 encode -> the same UNet shape with 16 in/out channels -> x0 ->
        VAE16 decode -> crop (GenDR's one-step pipeline).
padcfg  the pixel pipeline with PadCFG (two passes, or one batch of two with the `fuse` lever).
upscale the public `upscale()` on a low-resolution image (1/4 of the output size), end to end:
        resize, model, clamp, copy back to the CPU as float32.
Weights are random (kaiming, as freshly built modules): the bench measures cost, not quality.
Models are built on the meta device and materialised directly in the variant's dtype and memory
format, so building never holds a second (fp32) copy of the weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..accel import DTYPES, compile_unet
from ..config import UNET_PRESETS, ModelConfig
from ..guidance import Guidance, guided
from ..model import GenDRPix, prediction_to_sample
from ..padding import crop, pads_to_multiple, reflect_pad
from ..unet import UNet
from ..upscale import UpscaleOptions, upscale
from ..vae import VAE
from .flops import FlopCount, count_flops

PIPELINES: tuple[str, ...] = ("pixel", "latent", "padcfg", "upscale")
FLAGS: tuple[str, ...] = ("cl", "compile", "fuse")
LATENT_CHANNELS = 16
UPSCALE_FACTOR = 4
PADCFG_SCALE = 1.5  # any w != 1 costs the same


@dataclass(frozen=True, kw_only=True)
class Variant:
    """One combination of optimisation levers, named like `bf16+cl+compile`."""

    dtype: str = "fp32"
    channels_last: bool = False
    """Weights and activations in NHWC (`cl`)."""
    compile: bool = False
    """torch.compile the networks (`compile`); the first run pays the compilation."""
    fuse: bool = False
    """Guidance branches as one batch of two (`fuse`); affects `padcfg` only."""

    @property
    def name(self) -> str:
        flags = [f for f, on in zip(FLAGS, (self.channels_last, self.compile, self.fuse)) if on]
        return "+".join([self.dtype, *flags])

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @classmethod
    def parse(cls, name: str) -> Variant:
        """`fp32`, `bf16+cl`, `fp16+cl+compile+fuse`, ... Raises ValueError naming the bad part."""
        dtype, *flags = name.split("+")
        if dtype not in DTYPES:
            raise ValueError(f"variant {name!r}: dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        unknown = sorted(set(flags) - set(FLAGS))
        if unknown:
            raise ValueError(f"variant {name!r}: unknown flags {unknown}; known: {list(FLAGS)}")
        return cls(dtype=dtype, channels_last="cl" in flags, compile="compile" in flags, fuse="fuse" in flags)


@dataclass(frozen=True, kw_only=True)
class Case:
    """One benchmark configuration."""

    pipeline: str
    preset: str
    height: int
    width: int
    variant: Variant

    def __post_init__(self) -> None:
        if self.pipeline not in PIPELINES:
            raise ValueError(f"pipeline must be one of {PIPELINES}, got {self.pipeline!r}")
        if self.preset not in UNET_PRESETS:
            raise ValueError(f"preset must be one of {sorted(UNET_PRESETS)}, got {self.preset!r}")
        if self.height < 1 or self.width < 1:
            raise ValueError(f"output size must be positive, got {self.height}x{self.width}")

    @property
    def label(self) -> str:
        return f"{self.pipeline}/{self.preset}/{self.height}x{self.width}/{self.variant.name}"


@dataclass
class Built:
    """A ready-to-call pipeline and what it holds."""

    run: Callable[[], Tensor]
    modules: list[nn.Module]
    inputs: list[Tensor]


def materialize(module: nn.Module, device: torch.device, variant: Variant) -> nn.Module:
    """Turn a meta-device module into a randomly initialised one on `device`, in the variant's format."""
    module.to(dtype=variant.torch_dtype)
    if variant.channels_last:
        module.to(memory_format=torch.channels_last)
    module.to_empty(device=device)
    with torch.no_grad():
        for sub in module.modules():
            if hasattr(sub, "reset_parameters"):
                sub.reset_parameters()
            for name, p in sub.named_parameters(recurse=False):
                if name in ("positive", "negative"):
                    p.normal_()
    return module.eval().requires_grad_(False)


def _compiled(fn: Callable, variant: Variant) -> Callable:
    return torch.compile(fn, dynamic=False) if variant.compile else fn


def build(case: Case, device: torch.device) -> Built:
    """Build `case` on `device` (or `meta`, for FLOP counting) with a random input."""
    v = case.variant
    unet_cfg = UNET_PRESETS[case.preset]
    gen = torch.Generator().manual_seed(0)
    if case.pipeline == "upscale":
        lr = torch.rand(1, 3, max(1, case.height // UPSCALE_FACTOR), max(1, case.width // UPSCALE_FACTOR),
                        generator=gen)
        model = _pixel_model(unet_cfg, device, v)
        if v.compile:
            compile_unet(model)
        opts = UpscaleOptions(scale=UPSCALE_FACTOR)
        return Built(run=lambda: upscale(model, lr, opts), modules=[model], inputs=[lr])
    x = (torch.rand(1, 3, case.height, case.width, generator=gen) * 2 - 1).to(device, v.torch_dtype)
    if case.pipeline == "latent":
        return _latent(unet_cfg, x, device, v)
    model = _pixel_model(unet_cfg, device, v)
    if v.compile:
        compile_unet(model)
    if case.pipeline == "pixel":
        return Built(run=lambda: model(x), modules=[model], inputs=[x])
    fn = guided(model, Guidance(scale=PADCFG_SCALE, mode="padcfg"), fuse=v.fuse)
    return Built(run=lambda: fn(x), modules=[model], inputs=[x])


def _pixel_model(unet_cfg, device: torch.device, v: Variant) -> GenDRPix:
    with torch.device("meta"):
        model = GenDRPix(ModelConfig(unet=unet_cfg))
    return materialize(model, device, v)


def _latent(unet_cfg, x: Tensor, device: torch.device, v: Variant) -> Built:
    cfg = dataclasses.replace(unet_cfg, in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS)
    with torch.device("meta"):
        unet, vae = UNet(cfg), VAE()
        context = torch.empty(1, ModelConfig().context_tokens, cfg.context_dim)
    unet, vae = materialize(unet, device, v), materialize(vae, device, v)
    context = torch.randn(context.shape, generator=torch.Generator().manual_seed(1)).to(device, v.torch_dtype)
    encode, denoise, decode = _compiled(vae.encode, v), _compiled(unet, v), _compiled(vae.decode, v)
    model_cfg = ModelConfig()
    multiple = 8 * cfg.grid_multiple
    memory_format = torch.channels_last if v.channels_last else torch.contiguous_format

    def run() -> Tensor:
        pads = pads_to_multiple(x.shape[-2], x.shape[-1], multiple)
        z = encode(reflect_pad(x, pads).contiguous(memory_format=memory_format))
        t = torch.full((1,), model_cfg.timestep, device=z.device)
        z0 = prediction_to_sample(z, denoise(z, t, context), model_cfg.prediction, model_cfg.alpha_bar)
        return crop(decode(z0), pads)

    return Built(run=run, modules=[unet, vae], inputs=[x, context])


def flops(case: Case) -> FlopCount:
    """FLOPs of one call, counted on the meta device; `upscale` counts as `pixel` at the output size."""
    meta_case = dataclasses.replace(
        case, pipeline="pixel" if case.pipeline == "upscale" else case.pipeline,
        variant=dataclasses.replace(case.variant, dtype="fp32", compile=False, channels_last=False),
    )
    built = build(meta_case, torch.device("meta"))
    return count_flops(built.run)
