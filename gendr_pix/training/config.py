"""The training config: frozen dataclasses, read from a TOML or JSON file with one table per section.

Example (TOML):

    [run]
    dir = "runs/small-x4"
    mode = "pixel"          # pixel | stage1 | stage2
    steps = 20000
    batch = 8
    [model]
    preset = "small"
    [data]
    folder = "data/photos/train"
    crop = 128
    [loss]
    perceptual = 1.0
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data import DataConfig
from .degrade import DegradeConfig
from .objectives import LossConfig

MODES = ("pixel", "stage1", "stage2")
PRECISIONS = ("fp32", "tf32", "bf16")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    dir: str = "runs/default"
    """Output folder: last.pt (resume state), model_ema.safetensors, log.jsonl, samples/."""
    mode: str = "pixel"
    steps: int = 1000
    batch: int = 8
    lr: float = 2e-4
    lr_d: float = 2e-4
    weight_decay: float = 0.0
    warmup: int = 100
    """Linear learning-rate warm-up steps; cosine decay to `lr_min_ratio` * lr afterwards."""
    lr_min_ratio: float = 0.1
    grad_clip: float = 1.0
    embedding_lr_mult: float = 10.0
    """Learning-rate multiplier of the positive/negative embeddings: they get gradient only through the
    cross-attention of the deep levels, and at 1x they barely move away from their initial values."""
    ema: float = 0.999
    """EMA decay of the generator weights (0 = no EMA; the exported model is then the raw one)."""
    log_every: int = 10
    sample_every: int = 500
    save_every: int = 200
    keep_snapshots: bool = False
    """Also keep each save's EMA model as `ema_step<N>.safetensors`: a ship rule that picks among a
    run's snapshots needs them, and `model_ema.safetensors` is overwritten at every save."""
    workers: int = 1
    threads: int = 0
    """torch threads in the training process (0 = torch's default)."""
    device: str = "cpu"
    precision: str = "fp32"
    """fp32 | tf32 | bf16. tf32: float32 everywhere, but CUDA matmuls/convolutions in TF32 (a GPU's
    fast path; no effect on CPUs). bf16: also the forward passes under bfloat16 autocast; weights,
    optimizer state, EMA and the loss statistics stay float32. Why: bf16 is a GPU's usual fast path, so
    a short lease trains more steps (not yet measured on a GPU here; 1.2-1.4x on an AVX512-BF16 CPU,
    `scripts/train_speed.py`); fp32 stays the default so the CPU-trained phases reproduce exactly."""
    seed: int = 0
    max_minutes: float = 0.0
    """Stop (after saving) once this much wall time has passed in this invocation; 0 = no limit."""
    stop_at: int = 0
    """Stop (after saving) at this step with the schedule still planned for `steps` (0 = at `steps`):
    reproduces an early snapshot of a longer run exactly (the learning rate depends on `steps`)."""
    train_only: tuple[str, ...] = ()
    """Train only the generator parameters under these name prefixes (e.g. "unet.conv_out"), the rest
    frozen; empty = all. Why: fine-tuning a finished model for one flaw (the 8x8 pattern comes out of
    the last conv before the pixel-shuffle) without letting the whole network drift."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"run.mode must be one of {MODES}, got {self.mode!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"run.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.steps < 1 or self.batch < 1:
            raise ValueError("run.steps and run.batch must be >= 1")
        if not 0 <= self.stop_at <= self.steps:
            raise ValueError(f"run.stop_at must be in [0, run.steps = {self.steps}], got {self.stop_at}")
        if isinstance(self.train_only, str) or not all(isinstance(x, str) and x for x in self.train_only):
            raise ValueError(f"run.train_only must be a list of parameter-name prefixes, got {self.train_only!r}")


@dataclass(frozen=True, kw_only=True)
class ModelSection:
    preset: str = "small"
    """A key of gendr_pix.UNET_PRESETS; `unet` entries override single fields."""
    unet: dict = field(default_factory=dict)
    prediction: str = "epsilon"
    timestep: float = 50.0
    alpha_bar: float = 0.95
    """[ours] The LQ input is read as the image at t = 50 of SD's schedule (alpha_bar ~ 0.95): the
    UNet's epsilon output is then a scaled residual, and a zero-initialised conv_out starts the model
    at (almost) the identity, which trains far faster from scratch than predicting the image."""
    context_tokens: int = 4
    embedding_std: float = 1.0
    """Init std of the positive/negative embeddings; near-zero embeddings give cross-attention nothing
    to tell the two conditions apart with (measured: at 0.02 guidance did nothing after 2k steps)."""
    init: str = ""
    """Start from this GenDR-Pix checkpoint (pixel mode) instead of random weights."""
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class TeacherSection:
    path: str = ""
    """Latent teacher file (see latent.py); required for stage1/stage2, optional target in pixel mode."""
    stage1: str = ""
    """Stage-I student file: stage II initialises from it and uses it as its discriminator."""


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    run: RunConfig = field(default_factory=RunConfig)
    model: ModelSection = field(default_factory=ModelSection)
    data: DataConfig = field(default_factory=DataConfig)
    degrade: DegradeConfig = field(default_factory=DegradeConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    teacher: TeacherSection = field(default_factory=TeacherSection)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SECTIONS = {"run": RunConfig, "model": ModelSection, "data": DataConfig, "degrade": DegradeConfig,
            "loss": LossConfig, "teacher": TeacherSection}


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"{where}: unknown keys {', '.join(unknown)} (known: {', '.join(names)})")
    values = {}
    for k, v in data.items():
        if dataclasses.is_dataclass(names[k].default) and isinstance(v, dict):
            v = _build(type(names[k].default), v, f"{where}.{k}")
        elif isinstance(v, list):
            v = tuple(v)
        values[k] = v
    return cls(**values)


def config_from_dict(data: dict[str, Any], where: str = "config") -> TrainConfig:
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ValueError(f"{where}: unknown sections {', '.join(unknown)} (known: {', '.join(SECTIONS)})")
    return TrainConfig(**{k: _build(SECTIONS[k], v, f"{where}[{k}]") for k, v in data.items()})


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a .toml or .json config; `overrides` are "section.key=value" strings (value parsed as JSON,
    else kept as a string)."""
    path = Path(path)
    text = path.read_text()
    if path.suffix == ".toml":
        if sys.version_info < (3, 11):
            raise ValueError(f"{path}: TOML configs need Python >= 3.11; use JSON")
        import tomllib

        data = tomllib.loads(text)
    else:
        data = json.loads(text)
    for item in overrides or []:
        key, _, raw = item.partition("=")
        section, _, name = key.partition(".")
        if not name:
            raise ValueError(f"override {item!r} must look like section.key=value")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        data.setdefault(section, {})[name] = value
    return config_from_dict(data, str(path))
