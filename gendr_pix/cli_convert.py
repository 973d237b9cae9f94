"""`python -m gendr_pix convert SRC OUT.safetensors`: any loadable checkpoint -> our self-describing format.

For foreign files: a diffusers folder, an LDM `.ckpt`, a bare UNet file. The settings the source does
not store are given with `--set`; the output stores them, so it loads without guesses (and without
warnings) everywhere. Pickles that name other Python objects (Lightning checkpoints, pickled modules)
are read with inert stand-ins for those objects: only tensors come out, nothing from the file runs.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections import Counter
from pathlib import Path

import torch

from .checkpoint import CheckpointError, load_model, model_from_tensors, read_tensors, save_model
from .cli import CLIError, add_set_argument, settings_from
from .config import ConfigError
from .diffusers_files import checkpoint_files
from .settings import CLI

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="checkpoint file (.safetensors, .ckpt, .pt, .pth, .bin) or diffusers folder")
    p.add_argument("output", help="the .safetensors file to write")
    add_set_argument(p)
    p.add_argument("--dtype", default="keep", choices=["keep", *DTYPES],
                   help="precision of the written weights (keep: the source's)")
    p.add_argument("--allow-assumed", action="store_true",
                   help="write even when some settings are guessed (they are then stored as if known)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise CLIError(f"{out}: already exists (use --overwrite to replace)")
    warnings: list[str] = []
    try:
        files = checkpoint_files(args.source)
        if out.resolve() in {p.resolve() for p in files.all}:
            raise CLIError(f"{out}: is the source itself; write to another file")
        tensors, metadata = read_tensors(files.weights, skip_objects=True)
        model = model_from_tensors(files, tensors, metadata, config_overrides=settings, how_to_set=CLI,
                                   warn=warnings.append)
    except (CheckpointError, ConfigError) as e:
        raise CLIError(str(e)) from None
    if warnings and not args.allow_assumed:
        raise CLIError(f"{' '.join(warnings)} Nothing was written: the output would store these guesses as the "
                       "model's own settings. Give the real values with --set, or pass --allow-assumed.")
    for warning in warnings:
        print(f"warning: {warning}")
    if not model.config.description:
        note = f"converted from {files.weights.name}" + (" with assumed settings" if warnings else "")
        model.config = dataclasses.replace(model.config, description=note)
    save_model(model, out, dtype=_dtype(args.dtype, tensors))
    written = load_model(out)  # proves the file reads back as written, with no guesses
    if written.config != model.config:
        raise CLIError(f"{out}: reads back with another config; please report this")
    print(f"wrote {out}: {_summary(written)}")
    return 0


def _dtype(name: str, tensors) -> torch.dtype:
    if name != "keep":
        return DTYPES[name]
    floats = Counter(t.dtype for t in tensors.values() if t.is_floating_point())
    return floats.most_common(1)[0][0] if floats else torch.float32


def _summary(model) -> str:
    c = model.config
    return (f"prediction={c.prediction} timestep={c.timestep:g} alpha_bar={c.alpha_bar:g} "
            f"head_dim={c.unet.head_dim} norm_groups={c.unet.norm_groups} scale={c.scale:g}")
