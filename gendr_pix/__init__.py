"""GenDR-Pix core: one-step generative super-resolution in pixel space (no VAE).

Pure torch + einops + safetensors; no ComfyUI import. Typical use:

    import gendr_pix
    model = gendr_pix.load_model("model.safetensors")        # or gendr_pix.load_default_model()
    out = gendr_pix.upscale(model, images, gendr_pix.UpscaleOptions(scale=4))  # [B, 3, H, W] in [0, 1]
"""

from .accel import PRECISIONS, compile_unet, resolve_dtype, use_channels_last
from .callbacks import Interrupted, ProgressFn, StopFn
from .checkpoint import (
    DEFAULT_MODEL,
    CheckpointError,
    check_finite,
    load_default_model,
    load_model,
    model_from_tensors,
    read_tensors,
    save_model,
)
from .colorfix import COLOR_FIXES, LUMA, color_fix, is_grey, to_grey
from .config import SHUFFLE, UNET_PRESETS, ConfigError, ModelConfig, UNetConfig
from .diffusers_files import CheckpointFiles, checkpoint_files
from .ensemble import ENSEMBLE_OFFSETS, self_ensemble
from .gridfilter import DEFAULT_WINDOW as GRID_FILTER_WINDOW
from .gridfilter import grid_filtered, grid_pattern
from .guidance import GUIDANCE_MODES, Guidance, guided
from .imageio import ImageFileError, find_images, load_image, save_image
from .layouts import diffusers_to_ldm, ldm_to_diffusers
from .model import GenDRPix
from .padding import crop, reflect_pad
from .settings import Assumed, HowToSet, apply_settings, parse_settings
from .tiling import run_tiled
from .unet import UNet
from .upscale import UpscaleOptions, estimate_memory, output_size, resize, upscale
from .vae import VAE, VAEConfig

__version__ = "0.1.0"

__all__ = [
    "Assumed",
    "COLOR_FIXES",
    "CheckpointError",
    "CheckpointFiles",
    "ConfigError",
    "DEFAULT_MODEL",
    "ENSEMBLE_OFFSETS",
    "GRID_FILTER_WINDOW",
    "GUIDANCE_MODES",
    "GenDRPix",
    "Guidance",
    "HowToSet",
    "ImageFileError",
    "Interrupted",
    "LUMA",
    "ModelConfig",
    "PRECISIONS",
    "ProgressFn",
    "SHUFFLE",
    "StopFn",
    "UNET_PRESETS",
    "UNet",
    "UNetConfig",
    "UpscaleOptions",
    "VAE",
    "VAEConfig",
    "apply_settings",
    "check_finite",
    "checkpoint_files",
    "color_fix",
    "compile_unet",
    "crop",
    "diffusers_to_ldm",
    "estimate_memory",
    "find_images",
    "grid_filtered",
    "grid_pattern",
    "guided",
    "is_grey",
    "ldm_to_diffusers",
    "load_default_model",
    "load_image",
    "load_model",
    "model_from_tensors",
    "output_size",
    "parse_settings",
    "read_tensors",
    "reflect_pad",
    "resize",
    "resolve_dtype",
    "run_tiled",
    "save_image",
    "save_model",
    "self_ensemble",
    "to_grey",
    "upscale",
    "use_channels_last",
]
