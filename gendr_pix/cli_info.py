"""`python -m gendr_pix info FILE`: what a checkpoint file holds, whether it loads, and what it assumes.

Also the tool for adding a checkpoint layout: `--keys` dumps every tensor name, shape and dtype.
"""

from __future__ import annotations

import argparse
import json

from .cli import CLIError, add_set_argument, settings_from


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="checkpoint file (.safetensors, .pt, .pth, .ckpt, .bin) or diffusers folder")
    p.add_argument("--keys", action="store_true", help="list every tensor: name, shape, dtype")
    add_set_argument(p)


def run(args: argparse.Namespace) -> int:
    import gendr_pix as g  # imported when the command runs: `info --help` does not import torch

    from .settings import CLI

    settings = settings_from(args)
    try:
        files = g.checkpoint_files(args.file)
        tensors, metadata = g.read_tensors(files.weights)
    except g.CheckpointError as e:
        raise CLIError(str(e)) from None
    params = sum(t.numel() for t in tensors.values())
    print(f"{files.weights}: {len(tensors)} tensors, {params / 1e6:.2f}M values")
    for config in (files.unet_config, files.scheduler_config):
        if config is not None:
            print(f"reads {config}")
    if metadata:
        print("metadata keys:", ", ".join(sorted(metadata)))
    if args.keys:
        for name, t in sorted(tensors.items()):
            print(f"  {name}  {tuple(t.shape)}  {str(t.dtype).removeprefix('torch.')}")
    warnings: list[str] = []
    try:
        model = g.model_from_tensors(files, tensors, metadata, config_overrides=settings, how_to_set=CLI,
                                     warn=warnings.append)
    except (g.CheckpointError, g.ConfigError) as e:
        print(f"does not load: {e}")
        return 1
    unet_params = sum(p.numel() for p in model.unet.parameters())
    print(f"loads as GenDR-Pix: UNet {unet_params / 1e6:.2f}M parameters")
    print(json.dumps(model.config.to_dict(), indent=2))
    for warning in warnings:
        print(f"warning: {warning}")
    return 0
