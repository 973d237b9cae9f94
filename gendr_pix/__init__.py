"""GenDR-Pix core: one-step generative super-resolution in pixel space (no VAE).

Pure torch + einops + safetensors; no ComfyUI import. Typical use:

    import gendr_pix
    model = gendr_pix.load_default_model(device="auto")      # or gendr_pix.load_model("model.safetensors")
    out = gendr_pix.upscale(model, images, gendr_pix.UpscaleOptions(scale=4))  # [B, 3, H, W] in [0, 1]

The public names load on first use (PEP 562), so importing the package costs nothing until one is
used: `python -m gendr_pix --help` answers without importing torch.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

__version__ = "0.1.0"

_EXPORTS: dict[str, tuple[str, ...]] = {
    # submodule: its public names
    "accel": ("PRECISIONS", "compile_unet", "device_dtype", "resolve_device", "resolve_dtype", "use_channels_last"),
    "callbacks": ("Interrupted", "ProgressFn", "StopFn"),
    "checkpoint": ("DEFAULT_MODEL", "CheckpointError", "check_finite", "load_default_model", "load_model",
                   "model_from_tensors", "read_tensors", "save_model"),
    "colorfix": ("COLOR_FIXES", "LUMA", "color_fix", "is_grey", "to_grey"),
    "config": ("SHUFFLE", "UNET_PRESETS", "ConfigError", "ModelConfig", "UNetConfig"),
    "diffusers_files": ("CheckpointFiles", "checkpoint_files"),
    "errors": ("NonFiniteOutputError", "SettingError"),
    "ensemble": ("ENSEMBLE_OFFSETS", "self_ensemble"),
    "gridfilter": ("GRID_FILTER_WINDOW", "grid_filtered", "grid_pattern"),
    "guidance": ("GUIDANCE_MODES", "Guidance", "guided"),
    "imageio": ("ImageFileError", "find_images", "load_image", "read_bit_depth", "read_icc_profile", "save_image"),
    "layouts": ("diffusers_to_ldm", "ldm_to_diffusers"),
    "model": ("GenDRPix",),
    "padding": ("crop", "reflect_pad"),
    "settings": ("Assumed", "HowToSet", "apply_settings", "parse_settings"),
    "tiling": ("run_tiled",),
    "unet": ("UNet",),
    "upscale": ("PLAIN", "UpscaleOptions", "estimate_memory", "output_size", "resize", "upscale"),
    "vae": ("VAE", "VAEConfig"),
}
_RENAMED = {"GRID_FILTER_WINDOW": "DEFAULT_WINDOW"}  # public name: name in its submodule
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(ModuleType):
    def __setattr__(self, name: str, value) -> None:
        # Importing the submodule `gendr_pix.upscale` binds it to this package under its own name;
        # the public `gendr_pix.upscale` is the function of that name, as with eager imports.
        if isinstance(value, ModuleType) and _HOME.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
