"""GenDR-Pix core: one-step generative super-resolution in pixel space (no VAE).

Pure torch + einops + safetensors; no ComfyUI import. Typical use:

    import gendr_pix
    model = gendr_pix.load_model("model.safetensors")        # or gendr_pix.load_default_model()
    out = gendr_pix.upscale(model, images, gendr_pix.UpscaleOptions(scale=4))  # [B, 3, H, W] in [0, 1]
"""

from .accel import PRECISIONS, compile_unet, resolve_dtype, use_channels_last
from .callbacks import Interrupted, ProgressFn, StopFn
from .checkpoint import DEFAULT_MODEL, CheckpointError, load_default_model, load_model, read_tensors, save_model
from .colorfix import COLOR_FIXES, LUMA, color_fix, is_grey, to_grey
from .config import SHUFFLE, UNET_PRESETS, ConfigError, ModelConfig, UNetConfig
from .ensemble import ENSEMBLE_OFFSETS, self_ensemble
from .errors import NonFiniteOutputError, SettingError
from .gridfilter import DEFAULT_WINDOW as GRID_FILTER_WINDOW
from .gridfilter import grid_filtered, grid_pattern
from .guidance import GUIDANCE_MODES, Guidance, guided
from .imageio import ImageFileError, find_images, load_image, save_image
from .layouts import diffusers_to_ldm, ldm_to_diffusers
from .model import GenDRPix
from .padding import crop, reflect_pad
from .tiling import run_tiled
from .unet import UNet
from .upscale import UpscaleOptions, estimate_memory, output_size, resize, upscale
from .vae import VAE, VAEConfig

__version__ = "0.1.0"

__all__ = [
    "COLOR_FIXES",
    "CheckpointError",
    "ConfigError",
    "DEFAULT_MODEL",
    "ENSEMBLE_OFFSETS",
    "GRID_FILTER_WINDOW",
    "GUIDANCE_MODES",
    "LUMA",
    "GenDRPix",
    "Guidance",
    "ImageFileError",
    "Interrupted",
    "ModelConfig",
    "NonFiniteOutputError",
    "PRECISIONS",
    "ProgressFn",
    "SHUFFLE",
    "SettingError",
    "StopFn",
    "UNET_PRESETS",
    "UNet",
    "UNetConfig",
    "UpscaleOptions",
    "VAE",
    "VAEConfig",
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
    "output_size",
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
