"""Foreign checkpoints: UNet weights without our metadata, and the settings they leave open.

A foreign file is a diffusers or LDM UNet state dict, alone or with config files beside it (see
`diffusers_files`). Its shape comes from the tensors; the settings below come from its configs when
there are any, else from the user, else they are guessed and every guess is reported.
"""

from __future__ import annotations

import json
from typing import Any

from torch import Tensor

from .config import GENDR_ALPHA_BAR, GENDR_TIMESTEP, PIXEL_CHANNELS, ConfigError, ModelConfig, UNetConfig
from .diffusers_files import CONFIG_KEYS, CheckpointFiles, Schedule, read_schedule, schedule_from_tensor, unet_fields
from .errors import CheckpointError
from .layouts import StateDict, detect_layout, infer_unet_config, ldm_to_diffusers, strip_prefixes
from .settings import PYTHON, UNET_FIELDS, Assumed, HowToSet, apply_settings, invalid, normalize_settings

GUESSES: dict[str, tuple[Any, str]] = {
    # setting: (value used when neither the file, its configs nor the user give one, why that value)
    "prediction": ("epsilon", "GenDR's"),
    "timestep": (GENDR_TIMESTEP, "GenDR's one step"),
    "alpha_bar": (GENDR_ALPHA_BAR, "GenDR's one step"),
    "head_dim": (64, "SD2.1's; tensor shapes cannot show it"),
    "norm_groups": (32, "SD's; tensor shapes cannot show it"),
    "scale": (4.0, "the default upscale factor"),
}
_SHAPE_FIELDS = ("in_channels", "out_channels", "block_channels", "layers_per_block", "attention_levels",
                 "mid_attention", "transformer_depth", "context_dim", "linear_projection")


def describe_foreign(tensors: StateDict) -> str | None:
    """Name well-known non-GenDR-Pix checkpoint kinds from their keys, or None if it may be a UNet."""
    keys = tensors.keys()
    has = lambda prefix: any(k.startswith(prefix) for k in keys)  # noqa: E731
    if has("first_stage_model."):  # an LDM text encoder alone may ride along with a pixel UNet
        return "a full Stable Diffusion checkpoint (UNet + VAE + text encoder), i.e. a latent-space model"
    if has("encoder.conv_in.") and has("decoder.conv_in."):
        return "a VAE (autoencoder), not a UNet"
    if has("conv_first.") or has("body.0.rdb1.") or has("model.1.sub.0.RDB1.") or "model.0.weight" in keys:
        return "an ESRGAN-family upscaler (use ComfyUI's 'Upscale Image (using Model)' for it)"
    if has("text_model.") or has("transformer.resblocks."):
        return "a text encoder"
    return None


def from_foreign(files: CheckpointFiles, tensors: StateDict, overrides: dict[str, Any],
                 how_to_set: HowToSet = PYTHON) -> tuple[ModelConfig, StateDict, dict[str, Tensor], list[Assumed]]:
    """Config, canonical UNet state dict, stored embeddings and the guesses made, for a foreign file.

    Raises CheckpointError when it is not a pixel-space UNet, when its config.json disagrees with its
    tensors, or when the assumed head size / groups cannot fit its widths.
    """
    path = files.weights
    sd = _unet_state_dict(path, tensors)
    declared = unet_fields(files.unet_config) if files.unet_config else {}
    schedule = _schedule(files, tensors)
    if schedule is not None and schedule.prediction is not None:
        declared["prediction"] = schedule.prediction
    given = normalize_settings(overrides, origin=how_to_set.origin)
    values = {k: v for k, (v, _) in GUESSES.items()} | declared | given
    unet = _infer_unet(path, sd, values, [k for k in ("head_dim", "norm_groups") if k not in declared | given],
                       how_to_set)
    if files.unet_config:
        _cross_check(files, declared, unet)
    alpha_from = None
    if "alpha_bar" not in given and schedule is not None:
        alpha = schedule.alpha_bar(float(values["timestep"]))
        if alpha is not None:
            values["alpha_bar"], alpha_from = alpha, schedule.source
    attends = any(unet.attention_levels) or unet.mid_attention
    assumed = [Assumed(k, values[k], why) for k, (_, why) in GUESSES.items()
               if k not in declared and k not in given and not (k == "alpha_bar" and alpha_from)
               and not (k == "head_dim" and not attends)]
    embeddings = {k: tensors[k] for k in ("positive", "negative") if k in tensors}
    if len(embeddings) < 2:
        assumed.append(Assumed("positive/negative", "zeros", "none stored"))
    positive = embeddings.get("positive")
    tokens = positive.shape[-2] if positive is not None and positive.ndim >= 2 else 77
    try:
        config = ModelConfig(unet=unet, prediction=values["prediction"], timestep=float(values["timestep"]),
                             alpha_bar=float(values["alpha_bar"]), scale=float(values["scale"]), context_tokens=tokens)
    except ConfigError as e:
        if given:
            raise invalid(how_to_set.origin, given, e) from None
        raise CheckpointError(path, f"settings that do not fit ({e})") from None
    rest = {k: v for k, v in given.items() if k not in GUESSES and k not in UNET_FIELDS}
    config = apply_settings(config, rest, origin=how_to_set.origin) if rest else config
    return config, sd, embeddings, assumed


def _unet_state_dict(path, tensors: StateDict) -> StateDict:
    """The UNet tensors in the canonical (diffusers) layout; errors name what else the file is."""
    found = describe_foreign(tensors)
    if found is not None:
        raise CheckpointError(path, found)
    sd = strip_prefixes(tensors)
    layout = detect_layout(sd)
    if layout is None:
        sample = ", ".join(sorted(tensors)[:4])
        raise CheckpointError(path, f"an unrecognised state dict ({len(tensors)} tensors; first keys: {sample})")
    if layout == "ldm":
        sd = ldm_to_diffusers(sd)
    channels = sd["conv_in.weight"].shape[1]
    if channels != PIXEL_CHANNELS:
        kind = {4: "a latent SD1.x/2.x UNet", 16: "a latent UNet for a 16-channel VAE",
                7: "SD's x4 latent upscaler", 9: "an SD inpainting UNet"}.get(channels, "a UNet")
        raise CheckpointError(path, f"{kind} with {channels} input channels ({layout} layout)")
    return {k: v for k, v in sd.items() if k not in ("positive", "negative")}


def _schedule(files: CheckpointFiles, tensors: StateDict) -> Schedule | None:
    if files.scheduler_config is not None:
        return read_schedule(files.scheduler_config)
    stored = tensors.get("alphas_cumprod")  # LDM checkpoints keep their schedule as a buffer
    return None if stored is None else schedule_from_tensor(stored, "the file's alphas_cumprod")


def _infer_unet(path, sd: StateDict, values: dict[str, Any], guessed: list[str], how_to_set: HowToSet) -> UNetConfig:
    try:
        return infer_unet_config(sd, head_dim=int(values["head_dim"]), norm_groups=int(values["norm_groups"]))
    except ConfigError as e:
        if guessed:
            example = {k: values[k] for k in guessed}
            raise CheckpointError(path, f"a UNet whose widths do not fit the assumed {' and '.join(guessed)} ({e})",
                                  fix=f"Set the values it was trained with: {how_to_set.settings(example)}.") from None
        raise CheckpointError(path, f"a UNet whose widths do not fit its settings ({e})") from None
    except (KeyError, ValueError) as e:
        raise CheckpointError(path, f"a UNet with missing or odd tensors ({e})") from None


def _cross_check(files: CheckpointFiles, declared: dict[str, Any], unet: UNetConfig) -> None:
    """config.json must describe the tensors beside it; a mismatch names both."""
    attends = any(unet.attention_levels) or unet.mid_attention
    fields = [f for f in _SHAPE_FIELDS if attends or f not in ("context_dim", "linear_projection")]
    diff = [f"{CONFIG_KEYS[f]}: config.json {_listed(declared[f])}, tensors {_listed(getattr(unet, f))}"
            for f in fields if f in declared and _norm(declared[f]) != _norm(getattr(unet, f))]
    if diff:
        raise CheckpointError(
            files.unet_config,
            f"a config.json that disagrees with the tensors in {files.weights.name} ({'; '.join(diff)})",
            "the config.json that came with these weights",
            fix="Use the config.json released with the weights, or move the weights to a folder of their own.")


def _norm(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _listed(value: Any) -> str:
    """A value as JSON shows it (config.json's own spelling)."""
    return json.dumps(list(value) if isinstance(value, tuple) else value)
