"""The GENDR_PIX_MODEL value and the logic of the model-side nodes (loader, ensemble, guidance, grid filter).

No ComfyUI import here: everything is plain torch + the public `gendr_pix` API, so it runs in CI.
ComfyUI's ModelPatcher is carried as an opaque object (`patcher`); the glue module creates it.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import gendr_pix

log = logging.getLogger(__name__)

FOLDER_NAME = "gendr_pix"
"""ComfyUI model-folder key: `models/gendr_pix` plus any `gendr_pix:` entries of extra_model_paths.yaml."""
BUNDLED_CHOICE = f"(bundled) {gendr_pix.DEFAULT_MODEL.name}"
"""Loader list entry for the model shipped inside the package; stored in workflows, so frozen."""
PRECISIONS = gendr_pix.PRECISIONS
ENSEMBLE_SIZES: tuple[int, ...] = tuple(sorted(gendr_pix.ENSEMBLE_OFFSETS))
GUIDANCE_MODES: tuple[str, ...] = gendr_pix.GUIDANCE_MODES
GRID_FILTER_WINDOW = gendr_pix.GRID_FILTER_WINDOW
DEFAULT_ANTIRING = gendr_pix.UpscaleOptions.antiring


HOW_TO_SET = gendr_pix.HowToSet(
    "settings",
    lambda values: "type them into the Model Loader's settings box, one per line: "
                   + ", ".join(f"{k}={v}" for k, v in values.items()),
    "connect text conditioning to GenDR-Pix Guidance's positive and negative inputs",
)
"""How the loader's warning tells a ComfyUI user to set what a file does not store."""
SETTINGS_TOOLTIP = (
    "Only for model files that do not store their settings (a diffusers folder's weights, an LDM .ckpt, a bare "
    ".safetensors UNet): one per line, e.g. timestep=50, alpha_bar=0.95, prediction=epsilon, head_dim=32. The "
    "loader names every value it had to assume. Leave empty for GenDR-Pix files, which describe themselves "
    "(values given here replace theirs)."
)


@dataclass(frozen=True, kw_only=True, eq=False)
class PixModel:
    """What flows along a GENDR_PIX_MODEL wire: a loaded network plus how to run it.

    Nodes never mutate one: Self-ensemble, Guidance and Grid Filter return modified copies (`dataclasses.replace`),
    so a branch of the graph cannot change what another branch sees. The network itself is shared.
    """

    network: gendr_pix.GenDRPix
    patcher: Any = None
    """ComfyUI's ModelPatcher owning `network` (so ComfyUI can load and evict it); None outside ComfyUI."""
    source: str = ""
    """Where the weights came from (file path), for messages."""
    warning: str = ""
    """What the loader had to assume about the file (empty when nothing), shown on the loader node."""
    ensemble: int = 1
    """Padding self-ensemble size (1, 2, 4 or 8 grid shifts)."""
    guidance: gendr_pix.Guidance = field(default_factory=gendr_pix.Guidance)
    grid_filter: int = gendr_pix.UpscaleOptions.grid_filter
    """Grid filter window in pixels (0 = off), `gendr_pix.UpscaleOptions.grid_filter`: on by default."""
    antiring: float = gendr_pix.UpscaleOptions.antiring
    """Anti-ringing strength (0 = off, 1 = full), `gendr_pix.UpscaleOptions.antiring`: on by default."""
    positive: Tensor | None = None
    """[1, L, context_dim] embedding replacing the model's stored positive one; None = stored."""
    negative: Tensor | None = None

    @property
    def context_dim(self) -> int:
        return self.network.config.unet.context_dim


def model_choices(files: Sequence[str]) -> list[str]:
    """The loader's list: the bundled default first (listed even when the file is absent, so the
    error says what is missing), then the model-folder files in ComfyUI's order."""
    return [BUNDLED_CHOICE, *[f for f in files if f != BUNDLED_CHOICE]]


def resolve_model_path(choice: str, find: Callable[[str], str | None],
                       bundled: Path = gendr_pix.DEFAULT_MODEL) -> Path:
    """Map a loader choice to a file. `find` is ComfyUI's folder lookup (name -> path or None).

    Raises FileNotFoundError naming the file and where model files go: a builtin type, because
    ComfyUI prints an error's type with its module, and a pack's module name is its folder path.
    """
    if choice == BUNDLED_CHOICE:
        if not bundled.is_file():
            raise FileNotFoundError(
                f"The bundled default model {bundled} is not in this installation. Reinstall the pack "
                f"(the file ships with it), or put a GenDR-Pix .safetensors file into ComfyUI's "
                f"models/{FOLDER_NAME} folder and pick it in the loader."
            )
        return bundled
    path = find(choice)
    if path is None or not os.path.isfile(path):
        raise FileNotFoundError(
            f"Model file {choice!r} was not found in the {FOLDER_NAME} model folders (models/{FOLDER_NAME} "
            "or a 'gendr_pix:' entry of extra_model_paths.yaml). Refresh the node list (press R) after "
            "adding files."
        )
    return Path(path)


def file_identity(path: Path) -> tuple[str, int, int]:
    """(real path, size, mtime in ns): changes when the file is replaced, so the cache reloads."""
    st = os.stat(path)
    return os.path.realpath(path), st.st_size, st.st_mtime_ns


def checkpoint_identity(path: Path) -> tuple:
    """file_identity of the weights and of the diffusers configs read with them (config.json beside
    the weights, a pipeline's scheduler config): editing any of them reloads the model."""
    return tuple(file_identity(p) for p in gendr_pix.checkpoint_files(path).all)


def parse_loader_settings(text: str) -> dict[str, Any]:
    """The loader's settings box -> settings; raises gendr_pix.ConfigError quoting the bad line."""
    return gendr_pix.parse_settings(text or "", origin="settings")


class ModelCache:
    """Keeps the last `capacity` loaded models, keyed by file identity and dtype.

    ComfyUI's own output cache already skips an unchanged loader; this one also covers switching
    between workflows (whose outputs ComfyUI drops) without reading the file again. Capacity 1 by
    default: at most one extra model stays in RAM, and ComfyUI can still evict its GPU copy.
    """

    def __init__(self, capacity: int = 1) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._items: OrderedDict[Hashable, PixModel] = OrderedDict()

    def get_or_load(self, key: Hashable, load: Callable[[], PixModel]) -> PixModel:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = load()
        self._items[key] = value
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        self._items.clear()


def load_network(path: Path, dtype: torch.dtype, settings: dict[str, Any] | None = None,
                 warnings: list[str] | None = None) -> gendr_pix.GenDRPix:
    """Read a checkpoint on the CPU in `dtype` (safetensors, or a pickle with weights_only=True), with
    the loader's `settings` for what the file does not store. What it still had to assume is logged
    and appended to `warnings`. Raises gendr_pix.CheckpointError naming the file and what is wrong
    with it, gendr_pix.ConfigError for bad settings."""
    log.info("GenDR-Pix: loading %s as %s", path, str(dtype).removeprefix("torch."))

    def warn(message: str) -> None:
        log.warning("%s", message)
        if warnings is not None:
            warnings.append(message)

    return gendr_pix.load_model(path, device="cpu", dtype=dtype, config_overrides=settings,
                                how_to_set=HOW_TO_SET, warn=warn)


def load_pix_model(path: Path, dtype: torch.dtype, settings: dict[str, Any]) -> PixModel:
    """A PixModel for the loader: the network, where it came from, and the loader's warning."""
    warnings: list[str] = []
    network = load_network(path, dtype, settings, warnings)
    return PixModel(network=network, source=str(path), warning=" ".join(warnings))


def loader_ui(model: PixModel) -> dict[str, list[str]]:
    """The loader's UI output: its warning (empty = none), shown on the node by web/loader.js."""
    return {"gendr_pix_warning": [model.warning]}


def with_ensemble(model: PixModel, size: int) -> PixModel:
    """A copy of `model` that runs the padding self-ensemble over `size` grid shifts."""
    if size not in ENSEMBLE_SIZES:
        raise ValueError(f"self-ensemble size must be one of {ENSEMBLE_SIZES}, got {size!r}")
    return replace(model, ensemble=size)


def with_antiring(model: PixModel, strength: float) -> PixModel:
    """A copy of `model` that pulls its output into the input's local range by `strength` (0 = off)."""
    return _with_option(model, "antiring", float(strength), widget="strength")


def with_grid_filter(model: PixModel, window: int) -> PixModel:
    """A copy of `model` whose outputs go through the grid filter with a `window`-px window (0 = off)."""
    return _with_option(model, "grid_filter", int(window), widget="window")


def _with_option(model: PixModel, name: str, value: Any, *, widget: str) -> PixModel:
    """A copy of `model` with the UpscaleOptions field `name` set, checked by the core; its error
    names the node's widget."""
    try:
        gendr_pix.UpscaleOptions(**{name: value})
    except gendr_pix.SettingError as e:
        raise e.named({name: widget}) from None
    return replace(model, **{name: value})


def with_guidance(model: PixModel, scale: float, mode: str,
                  positive: Any = None, negative: Any = None) -> PixModel:
    """A copy of `model` with CFG/PadCFG guidance; CONDITIONING inputs replace the stored embeddings.

    Raises ValueError when a conditioning's width is not the model's context dimension.
    """
    guidance = gendr_pix.Guidance(scale=float(scale), mode=mode)
    pos = context_from_conditioning(positive, "positive", model.context_dim, model.source)
    neg = context_from_conditioning(negative, "negative", model.context_dim, model.source)
    return replace(model, guidance=guidance,
                   positive=model.positive if pos is None else pos,
                   negative=model.negative if neg is None else neg)


def context_from_conditioning(conditioning: Any, name: str, context_dim: int, source: str = "") -> Tensor | None:
    """ComfyUI CONDITIONING ([[tensor [B, L, D], {...}], ...]) -> a [1, L, D] embedding, or None.

    Only the first entry's first batch item is used: the model takes one embedding per condition.
    """
    if conditioning is None:
        return None
    if not isinstance(conditioning, (list, tuple)) or not conditioning:
        kind = type(conditioning).__name__
        raise ValueError(f"{name} conditioning must be a non-empty CONDITIONING list, got {kind}")
    entry = conditioning[0]
    cond = entry[0] if isinstance(entry, (list, tuple)) and entry else entry
    if not isinstance(cond, Tensor) or cond.ndim != 3:
        shape = tuple(cond.shape) if isinstance(cond, Tensor) else type(cond).__name__
        raise ValueError(f"{name} conditioning must hold a [batch, tokens, width] tensor, got {shape}")
    if len(conditioning) > 1:
        log.warning("GenDR-Pix: %s conditioning has %d entries; only the first is used", name, len(conditioning))
    width = cond.shape[-1]
    if width != context_dim:
        model = f" {source}" if source else ""
        raise ValueError(
            f"The {name} conditioning is {width} wide but the GenDR-Pix model{model} takes {context_dim}-wide "
            f"context. Use a text encoder whose output width is {context_dim} (SD2.x's OpenCLIP-H gives 1024), "
            "or leave the input unconnected to use the embeddings stored with the model."
        )
    return cond[:1].detach().to("cpu", torch.float32).clone()
