"""`python -m gendr_pix info FILE`: what a checkpoint file holds and whether it loads.

Also the tool for adding a checkpoint layout: `--keys` dumps every tensor name, shape and dtype.
"""

from __future__ import annotations

import argparse
import json

import gendr_pix as g  # names load on first use: `info --help` does not import torch

from .cli import CLIError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="checkpoint file (.safetensors, .pt, .pth, .ckpt, .bin)")
    p.add_argument("--keys", action="store_true", help="list every tensor: name, shape, dtype")


def run(args: argparse.Namespace) -> int:
    try:
        tensors, metadata = g.read_tensors(args.file)
    except g.CheckpointError as e:
        raise CLIError(str(e)) from None
    params = sum(t.numel() for t in tensors.values())
    print(f"{args.file}: {len(tensors)} tensors, {params / 1e6:.2f}M values")
    if metadata:
        print("metadata keys:", ", ".join(sorted(metadata)))
    if args.keys:
        for name, t in sorted(tensors.items()):
            print(f"  {name}  {tuple(t.shape)}  {str(t.dtype).removeprefix('torch.')}")
    try:
        model = g.load_model(args.file)
    except g.CheckpointError as e:
        print(f"does not load: {e}")
        return 1
    unet_params = sum(p.numel() for p in model.unet.parameters())
    print(f"loads as GenDR-Pix: UNet {unet_params / 1e6:.2f}M parameters")
    print(json.dumps(model.config.to_dict(), indent=2))
    return 0
