"""Every use of ComfyUI's own modules, in one place (the node files only declare schemas).

Model folder registration, the example inputs, ModelPatcher wrapping and GPU placement, progress bar
with preview, interrupt checks and the output device. Helper names differ between ComfyUI versions;
each one is looked up with a fallback here, so a rename upstream breaks one line, not the pack.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace

import comfy.model_management as mm
import comfy.model_patcher
import comfy.utils
import folder_paths
import torch
from torch import Tensor

import gendr_pix

from . import example_inputs
from .model_value import (
    FOLDER_NAME,
    ModelCache,
    PixModel,
    checkpoint_identity,
    load_pix_model,
    model_choices,
    parse_loader_settings,
    resolve_model_path,
)
from .upscale_run import ProgressRelay

log = logging.getLogger(__name__)

_CACHE = ModelCache(capacity=1)
_PREVIEW_FORMAT = "JPEG"


class PatchedNetwork(torch.nn.Module):
    """What the ModelPatcher owns. The patcher writes bookkeeping attributes (`device`,
    `model_loaded_weight_memory`, ...) onto its module; GenDRPix.device is a read-only property,
    so the network sits one level down and stays untouched."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network
        self.device = network.device


def ensure_model_folder() -> None:
    """Register `models/gendr_pix` beside any `gendr_pix:` entries that extra_model_paths.yaml added
    (ComfyUI reads the yaml before loading packs, with no file-extension filter), and filter by
    ComfyUI's model file extensions. Idempotent."""
    default = os.path.join(folder_paths.models_dir, FOLDER_NAME)
    folder_paths.add_model_folder_path(FOLDER_NAME, default)
    paths, extensions = folder_paths.folder_names_and_paths[FOLDER_NAME]
    wanted = set(folder_paths.supported_pt_extensions)
    if not wanted <= set(extensions):
        folder_paths.folder_names_and_paths[FOLDER_NAME] = (paths, set(extensions) | wanted)
        folder_paths.filename_list_cache.pop(FOLDER_NAME, None)
    try:
        os.makedirs(default, exist_ok=True)  # so users see where model files go
    except OSError as e:
        log.debug("GenDR-Pix: cannot create %s: %s", default, e)


def provide_example_inputs() -> None:
    """Copy the example workflows' inputs into ComfyUI's input folder where missing (never replacing a file)."""
    example_inputs.provide_example_inputs(folder_paths.get_input_directory())


def model_list() -> list[str]:
    ensure_model_folder()
    return model_choices(folder_paths.get_filename_list(FOLDER_NAME))


def _find(name: str) -> str | None:
    return folder_paths.get_full_path(FOLDER_NAME, name)


def model_fingerprint(choice: str) -> tuple:
    """Changes when the chosen file (or a config read with it) is replaced on disk, so ComfyUI re-runs
    the loader."""
    ensure_model_folder()
    try:
        return checkpoint_identity(resolve_model_path(choice, _find))
    except (OSError, ValueError):
        return ("missing", choice)


def load_model(choice: str, precision: str, settings: str = "") -> PixModel:
    """Load (or take from the cache) the chosen file, wrapped in a ModelPatcher."""
    ensure_model_folder()
    path = resolve_model_path(choice, _find)
    given = parse_loader_settings(settings)
    device = mm.get_torch_device()
    dtype = gendr_pix.resolve_dtype(precision, device_type=device.type, bf16_ok=_ask(mm, "should_use_bf16", device),
                                    fp16_ok=_ask(mm, "should_use_fp16", device))
    key = (checkpoint_identity(path), str(dtype), tuple(sorted(given.items())))
    return _CACHE.get_or_load(key, lambda: _wrap(load_pix_model(path, dtype, given), device))


def _wrap(model: PixModel, load_device: torch.device) -> PixModel:
    # Newer ComfyUI names the patcher class CoreModelPatcher; older ones only have ModelPatcher.
    patcher_cls = getattr(comfy.model_patcher, "CoreModelPatcher", None) or comfy.model_patcher.ModelPatcher
    patcher = patcher_cls(PatchedNetwork(model.network), load_device=load_device,
                          offload_device=mm.unet_offload_device())
    return replace(model, patcher=patcher)


def place(model: PixModel, memory_required: int) -> torch.device:
    """Have ComfyUI load the model onto its device (evicting other models if needed), fully."""
    if model.patcher is None:
        return model.network.device
    mm.load_models_gpu([model.patcher], memory_required=memory_required, force_full_load=True)  # >= 0.3.x
    device = model.patcher.load_device
    model.network.to(device)  # a partial (low-VRAM) load would leave weights behind
    return torch.device(device)


def available_ram() -> int:
    return int(mm.get_free_memory(torch.device("cpu")))


def progress_relay() -> ProgressRelay:
    """A ProgressRelay feeding ComfyUI's progress bar (each update is also an interrupt point)."""
    bar = comfy.utils.ProgressBar(1)
    size = _preview_size()

    def sink(done: int, total: int, image) -> None:
        # No max size: the relay already sized the preview, and ComfyUI would enlarge a smaller one to
        # fit (ImageOps.contain), so the frontend's label would not read the output's size.
        bar.update_absolute(done, total, None if image is None else (_PREVIEW_FORMAT, image, None))

    return ProgressRelay(sink, preview_size=size)


def check_interrupted() -> bool:
    """Raise ComfyUI's InterruptProcessingException if the user pressed Cancel; never swallowed."""
    throw = getattr(mm, "throw_exception_if_processing_interrupted", None)
    if throw is not None:
        throw()
    elif mm.processing_interrupted():
        raise mm.InterruptProcessingException()
    return False


def to_intermediate(image: Tensor) -> Tensor:
    """Move a result to where ComfyUI keeps intermediate IMAGEs (CPU unless --gpu-only)."""
    dtype = getattr(mm, "intermediate_dtype", None)
    return image.to(device=mm.intermediate_device(), dtype=dtype() if dtype else torch.float32)


def _preview_size() -> int:
    try:
        from comfy.cli_args import args
    except ImportError:
        return 512
    return int(getattr(args, "preview_size", 512) or 512)


def _ask(module, name: str, device: torch.device) -> bool:
    check = getattr(module, name, None)
    return bool(check(device)) if check is not None else False
