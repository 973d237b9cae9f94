"""Diffusers releases: find the weights in a folder, and read what its JSON configs define.

A diffusers UNet folder holds `config.json` + `diffusion_pytorch_model.safetensors` (or `.bin`, or an
`.fp16.` variant); a pipeline folder holds it under `unet/`, beside `scheduler/scheduler_config.json`
and `model_index.json`. The UNet config gives the shape, the attention head size and the GroupNorm
groups (the last two leave no trace in the tensors); the scheduler config gives the prediction type
and the noise schedule, from which alpha_bar at the model's timestep follows.

Only plain JSON values are read; nothing in a config is evaluated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError

CONFIG_NAME = "config.json"
SCHEDULER_CONFIG = Path("scheduler") / "scheduler_config.json"
WEIGHT_NAMES = (  # what diffusers' from_pretrained looks for, in its order of preference
    "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
    "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.bin",
)
_PREDICTIONS = {"epsilon": "epsilon", "v_prediction": "v", "sample": "sample"}

# UNet2DConditionModel options our UNet implements with one value only: (config key, that value).
# A config that sets another value describes a network we would compute differently.
_FIXED = {
    "act_fn": "silu", "flip_sin_to_cos": True, "freq_shift": 0, "center_input_sample": False,
    "downsample_padding": 1, "mid_block_scale_factor": 1, "norm_eps": 1e-5, "dual_cross_attention": False,
    "only_cross_attention": False, "class_embed_type": None, "num_class_embeds": None,
    "addition_embed_type": None, "encoder_hid_dim": None, "encoder_hid_dim_type": None,
    "resnet_time_scale_shift": "default", "resnet_skip_time_act": False, "resnet_out_scale_factor": 1.0,
    "time_embedding_type": "positional", "time_embedding_dim": None, "time_embedding_act_fn": None,
    "timestep_post_act": None, "time_cond_proj_dim": None, "conv_in_kernel": 3, "conv_out_kernel": 3,
    "attention_type": "default", "cross_attention_norm": None, "reverse_transformer_layers_per_block": None,
    "class_embeddings_concat": False,
}
# Where each UNetConfig field comes from in a diffusers config, for messages.
CONFIG_KEYS = {
    "in_channels": "in_channels", "out_channels": "out_channels", "block_channels": "block_out_channels",
    "layers_per_block": "layers_per_block", "attention_levels": "down_block_types",
    "mid_attention": "mid_block_type", "transformer_depth": "transformer_layers_per_block",
    "context_dim": "cross_attention_dim", "linear_projection": "use_linear_projection",
    "head_dim": "attention_head_dim/num_attention_heads", "norm_groups": "norm_num_groups",
}


@dataclass(frozen=True)
class CheckpointFiles:
    """The weights file and the config files that describe it (None where there is none)."""

    weights: Path
    unet_config: Path | None = None
    scheduler_config: Path | None = None

    @property
    def all(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.weights, self.unet_config, self.scheduler_config) if p is not None)


def checkpoint_files(path: str | Path) -> CheckpointFiles:
    """The files of a checkpoint given as a weights file, a diffusers UNet folder or a pipeline folder.

    A `config.json` beside the weights describes them; a pipeline's `scheduler/` sits beside `unet/`.
    Raises CheckpointError for a folder without weights.
    """
    path = Path(path)
    if path.is_dir():
        folder = path / "unet" if (path / "unet").is_dir() else path
        weights = next((folder / n for n in WEIGHT_NAMES if (folder / n).is_file()), None)
        if weights is None:
            found = sorted(p.name for p in folder.iterdir())[:8]
            raise CheckpointError(folder, f"a folder without diffusers UNet weights (it holds {found or 'nothing'})",
                                  f"one of {', '.join(WEIGHT_NAMES)} beside {CONFIG_NAME}")
    else:
        weights = path
    config = weights.parent / CONFIG_NAME
    if not config.is_file():
        return CheckpointFiles(weights)
    scheduler = weights.parent.parent / SCHEDULER_CONFIG
    return CheckpointFiles(weights, config, scheduler if scheduler.is_file() else None)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(path, f"an unreadable JSON file ({e})", "a diffusers config (JSON object)") from None
    if not isinstance(data, dict):
        raise CheckpointError(path, f"JSON holding {type(data).__name__}", "a diffusers config (JSON object)")
    return data


def unet_fields(path: Path) -> dict[str, Any]:
    """UNetConfig field values defined by a diffusers `UNet2DConditionModel` config.json.

    Missing keys take diffusers' defaults, as `from_pretrained` would. Raises CheckpointError for a
    config of another class, or one using options our UNet does not implement.
    """
    cfg = read_json(path)
    cls = cfg.get("_class_name", "UNet2DConditionModel")
    if cls != "UNet2DConditionModel":
        raise CheckpointError(path, f"a config for diffusers' {cls}",
                              "a UNet2DConditionModel config beside the weights")
    for key, value in _FIXED.items():
        if key in cfg and not _same(cfg[key], value):
            raise CheckpointError(path, f"{key} = {cfg[key]!r}, which GenDR-Pix's UNet does not implement",
                                  f"{key} = {value!r} (an SD2.1-shaped UNet)")
    widths = tuple(cfg.get("block_out_channels", (320, 640, 1280, 1280)))
    attention = _attention_levels(path, cfg, len(widths))
    mid = cfg.get("mid_block_type", "UNetMidBlock2DCrossAttn")
    if mid not in ("UNetMidBlock2DCrossAttn", "UNetMidBlock2D"):
        raise CheckpointError(path, f"mid_block_type = {mid!r}", "UNetMidBlock2DCrossAttn or UNetMidBlock2D")
    fields = {
        "in_channels": cfg.get("in_channels", 4),
        "out_channels": cfg.get("out_channels", 4),
        "block_channels": widths,
        "layers_per_block": _one_value(path, cfg, "layers_per_block", 2),
        "attention_levels": attention,
        "mid_attention": mid == "UNetMidBlock2DCrossAttn",
        "transformer_depth": _one_value(path, cfg, "transformer_layers_per_block", 1),
        "context_dim": _one_value(path, cfg, "cross_attention_dim", 1280),
        "linear_projection": bool(cfg.get("use_linear_projection", False)),
        "norm_groups": cfg.get("norm_num_groups", 32),
    }
    head_dim = _head_dim(path, cfg, widths, attention, fields["mid_attention"])
    return fields if head_dim is None else {**fields, "head_dim": head_dim}


def _attention_levels(path: Path, cfg: dict[str, Any], levels: int) -> tuple[bool, ...]:
    down = list(cfg.get("down_block_types", ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)))
    up = list(cfg.get("up_block_types", ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3))
    known = {"CrossAttnDownBlock2D": True, "DownBlock2D": False}
    if len(down) != levels or any(t not in known for t in down):
        raise CheckpointError(path, f"down_block_types = {down}",
                              f"{levels} entries (one per block_out_channels), "
                              "each CrossAttnDownBlock2D or DownBlock2D")
    attention = tuple(known[t] for t in down)
    mirrored = ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)]
    if up != mirrored:
        raise CheckpointError(path, f"up_block_types = {up}", f"the mirror of down_block_types: {mirrored}")
    return attention


def _one_value(path: Path, cfg: dict[str, Any], key: str, default: Any) -> Any:
    """A setting that diffusers allows per level, which our UNet has once."""
    value = cfg.get(key, default)
    if isinstance(value, (list, tuple)):
        flat = {json.dumps(v) for v in value}
        if len(flat) != 1:
            raise CheckpointError(path, f"{key} = {value} (different per level)", f"one {key} for all levels")
        value = value[0]
    return value


def _head_dim(path: Path, cfg: dict[str, Any], widths: Sequence[int], attention: Sequence[bool],
              mid: bool) -> int | None:
    """Channels per attention head, or None when nothing attends.

    diffusers quirk: in UNet2DConditionModel, `attention_head_dim` is used as the number of heads when
    `num_attention_heads` is unset (SD2.1: [5, 10, 20, 20] heads = 64 channels each).
    """
    heads = cfg.get("num_attention_heads") or cfg.get("attention_head_dim", 8)
    per_level = list(heads) if isinstance(heads, (list, tuple)) else [heads] * len(widths)
    if len(per_level) != len(widths):
        raise CheckpointError(path, f"{len(per_level)} head counts for {len(widths)} levels", "one per level")
    pairs = [(w, n) for w, n, a in zip(widths, per_level, attention) if a]
    if mid:
        pairs.append((widths[-1], per_level[-1]))
    if not pairs:
        return None
    sizes = {w / n for w, n in pairs}
    if len(sizes) != 1 or not next(iter(sizes)).is_integer():
        described = ", ".join(f"{w}/{n}" for w, n in pairs)
        raise CheckpointError(path, f"attention heads of different sizes (width/heads: {described})",
                              "the same head size at every attention level, as in SD2.1 (64)")
    return int(sizes.pop())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and not isinstance(b, (list, tuple)):
        return all(_same(x, b) for x in a)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9)
    return a == b


@dataclass(frozen=True)
class Schedule:
    """What a scheduler config says about the one step: prediction type and alpha_bar per timestep."""

    prediction: str | None
    """epsilon, v or sample; None when the source does not say (an LDM checkpoint's buffers)."""
    alphas_cumprod: tuple[float, ...] | None
    """alpha_bar at each integer training timestep; None when the schedule is one we do not compute."""
    source: str

    def alpha_bar(self, timestep: float) -> float | None:
        """alpha_bar at `timestep` (linear between integer steps); None outside the schedule."""
        a = self.alphas_cumprod
        if a is None or not 0 <= timestep <= len(a) - 1:
            return None
        lo = math.floor(timestep)
        hi = min(lo + 1, len(a) - 1)
        return a[lo] + (a[hi] - a[lo]) * (timestep - lo)


def read_schedule(path: Path) -> Schedule:
    """The prediction type and noise schedule of a diffusers scheduler config.

    Raises CheckpointError for a prediction type the one-step conversion does not know.
    """
    cfg = read_json(path)
    kind = cfg.get("prediction_type", "epsilon")
    if kind not in _PREDICTIONS:
        raise CheckpointError(path, f"prediction_type = {kind!r}", f"one of {', '.join(_PREDICTIONS)}")
    return Schedule(_PREDICTIONS[kind], _alphas_cumprod(cfg), str(path))


def schedule_from_tensor(values: torch.Tensor, source: str) -> Schedule | None:
    """An LDM checkpoint's stored `alphas_cumprod` buffer as a schedule (it does not say what is predicted)."""
    if values.ndim != 1 or len(values) < 2 or not values.is_floating_point():
        return None
    return Schedule(None, tuple(float(v) for v in values.double()), source)


def _alphas_cumprod(cfg: dict[str, Any]) -> tuple[float, ...] | None:
    """diffusers' DDPM-family schedules, computed as diffusers does (float32 betas)."""
    n = int(cfg.get("num_train_timesteps", 1000))
    start, end = float(cfg.get("beta_start", 0.0001)), float(cfg.get("beta_end", 0.02))
    kind = cfg.get("beta_schedule", "linear")
    if cfg.get("trained_betas") is not None:
        betas = torch.tensor(cfg["trained_betas"], dtype=torch.float32)
    elif kind == "linear":
        betas = torch.linspace(start, end, n, dtype=torch.float32)
    elif kind == "scaled_linear":
        betas = torch.linspace(start**0.5, end**0.5, n, dtype=torch.float32) ** 2
    elif kind == "squaredcos_cap_v2":
        f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
        betas = torch.tensor([min(1 - f((i + 1) / n) / f(i / n), 0.999) for i in range(n)], dtype=torch.float32)
    else:
        return None
    if cfg.get("rescale_betas_zero_snr"):
        return None
    return tuple(float(v) for v in torch.cumprod(1.0 - betas, dim=0))
