"""Settings a checkpoint may not carry: given by the user, or assumed and then named in a warning.

One spelling everywhere: a setting is a ModelConfig or UNetConfig field name (`timestep`,
`alpha_bar`, `prediction`, `head_dim`, ...). Python passes them as `config_overrides={"timestep": 50}`,
the CLI as `--set timestep=50`, the ComfyUI loader as `timestep=50` lines in its `settings` box.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .config import ConfigError, ModelConfig, UNetConfig

MODEL_FIELDS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(ModelConfig) if f.name != "unet"}
UNET_FIELDS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(UNetConfig)}
assert not MODEL_FIELDS.keys() & UNET_FIELDS.keys(), "flat setting names must be unambiguous"

COMMON = ("prediction", "timestep", "alpha_bar", "head_dim", "norm_groups", "scale")
"""The settings a foreign file usually leaves open, in the order messages list them."""


@dataclass(frozen=True)
class Assumed:
    """A value the loader had to guess: neither the file nor the user gave it."""

    name: str
    """The setting's name (`timestep`, `head_dim`, ...), or `positive/negative` for the embeddings."""
    value: Any
    why: str
    """Where the guess comes from, e.g. "GenDR's one step"."""

    @property
    def settable(self) -> bool:
        """False for the prompt embeddings, which are tensors, not settings."""
        return self.name in MODEL_FIELDS or self.name in UNET_FIELDS

    def __str__(self) -> str:
        return f"{self.name}={_show(self.value)} ({self.why})"


def parse_settings(items: str | Iterable[str], *, origin: str) -> dict[str, Any]:
    """`"timestep=50, head_dim=32"` (or one item per line / per list entry) -> typed settings.

    `origin` names where the text came from as the user sees it (`--set`, `settings`); errors quote it.
    Raises ConfigError for an unknown name, a missing '=', or a value of the wrong type.
    """
    texts = [items] if isinstance(items, str) else list(items)
    out: dict[str, Any] = {}
    for text in texts:
        for item in re.split(r"[\n;]|,(?![^\[]*\])", text):  # commas inside [..] belong to a list value
            item = item.strip()
            if not item or item.startswith("#"):
                continue
            name, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"{origin} {item!r}: expected NAME=VALUE, e.g. timestep=50")
            out[name.strip()] = _coerce(name.strip(), value.strip(), f"{origin} {item!r}")
    return out


def normalize_settings(settings: Mapping[str, Any], *, origin: str = "config_overrides") -> dict[str, Any]:
    """Flat, typed settings from flat names or UNet fields nested under "unet" (the older spelling).

    Raises ConfigError naming `origin` for unknown names and values of the wrong type.
    """
    out: dict[str, Any] = {}
    for name, value in settings.items():
        if name == "unet" and isinstance(value, Mapping):
            for sub, v in value.items():
                out[sub] = _coerce(sub, v, f"{origin} unet.{sub}", unet_only=True)
        else:
            out[name] = _coerce(name, value, f"{origin} {name}")
    return out


def apply_settings(config: ModelConfig, settings: Mapping[str, Any], *, origin: str = "config_overrides"
                   ) -> ModelConfig:
    """`config` with `settings` (see `normalize_settings`) applied.

    Raises ConfigError naming `origin` for unknown names and for values the config rejects.
    """
    flat = normalize_settings(settings, origin=origin)
    merged = config.to_dict()
    for name, value in flat.items():
        (merged["unet"] if name in UNET_FIELDS else merged)[name] = value
    try:
        return ModelConfig.from_dict(merged)
    except ConfigError as e:
        raise invalid(origin, flat, e) from None


def invalid(origin: str, given: Mapping[str, Any], error: Exception) -> ConfigError:
    """The error for settings that make the model config invalid, quoting them as the user gave them."""
    named = {k: v for k, v in given.items() if re.search(rf"\b{k}\b", str(error))} or given
    shown = " ".join(f"{k}={_show(v)}" for k, v in named.items())
    return ConfigError(f"{origin} {shown}: {error}")


@dataclass(frozen=True)
class HowToSet:
    """How a user of one front end (Python, CLI, ComfyUI) sets what a file does not store; for messages."""

    origin: str
    """What the user calls the settings they give: `config_overrides`, `--set`, the node's `settings`."""
    settings: Callable[[dict[str, Any]], str]
    """Settings (name -> example value) -> the instruction, e.g. `--set timestep=354`."""
    embeddings: str
    """How to give prompt embeddings instead of the zeros used when a file stores none."""

    def format_assumed(self, source: str, assumed: Iterable[Assumed]) -> str:
        """The warning for a file whose settings were partly guessed: each guess, and how to set it."""
        assumed = list(assumed)
        values = [a for a in assumed if a.settable]
        parts = [f"GenDR-Pix: {source} does not store all its settings."]
        if values:
            parts.append("Assumed: " + ", ".join(map(str, values)) + ".")
            example = {a.name: a.value for a in values}
            parts.append(f"If the output looks wrong, set the values the model was trained with: "
                         f"{self.settings(example)}.")
        if any(not a.settable for a in assumed):
            parts.append("No positive/negative prompt embeddings are stored: zeros are used, so guidance has no "
                         f"effect ({self.embeddings}).")
        return " ".join(parts)


PYTHON = HowToSet(
    "config_overrides",
    lambda values: f"load_model(path, config_overrides={values!r})",
    "pass positive=/negative= embeddings to upscale()",
)
CLI = HowToSet(
    "--set",
    lambda values: " ".join(f"--set {k}={_show(v)}" for k, v in values.items()),
    "the CLI cannot set them; in Python pass positive=/negative= to upscale()",
)


def _known_names() -> str:
    rest = sorted((MODEL_FIELDS.keys() | UNET_FIELDS.keys()) - set(COMMON))
    return f"settings are {', '.join(COMMON)} (and {', '.join(rest)})"


def _coerce(name: str, value: Any, where: str, *, unet_only: bool = False) -> Any:
    """`value` (text, or a Python value) as the type of the field's default."""
    fields = UNET_FIELDS if unet_only else {**MODEL_FIELDS, **UNET_FIELDS}
    if name not in fields:
        raise ConfigError(f"{where}: unknown setting {name!r}; {_known_names()}")
    default = fields[name]
    try:
        return _as_type(value, default)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {name} takes {_type_name(default)}, got {value!r} ({e})") from None


def _as_type(value: Any, default: Any) -> Any:
    if isinstance(value, str) and not isinstance(default, str):
        value = json.loads(value.lower() if isinstance(default, bool) else value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError("not true/false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not float(value).is_integer():
            raise ValueError("not a whole number")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not math.isfinite(float(value)):
            raise ValueError("not a finite number")
        return float(value)
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError("not a list")
        return tuple(_as_type(v, default[0]) for v in value)
    return str(value).strip().strip("'\"")


def _type_name(default: Any) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "a whole number"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, tuple):
        return f"a list like {list(default)}"
    return "text"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return str(value)
