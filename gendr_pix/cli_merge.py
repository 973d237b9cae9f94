"""`python -m gendr_pix merge OUT FILE:WEIGHT ...`: a weighted sum of GenDR-Pix checkpoints of the same
architecture (weight averaging, task arithmetic).

Weights must sum to 1, so the result is a point in the same weight space: `A:0.5 B:0.5` averages two
models; `BASE:1 RUN:1 CONTROL:-1` adds to BASE what distinguishes RUN from CONTROL, two fine-tunings
of BASE on the same data stream that differ in one setting (task arithmetic).

    python -m gendr_pix merge /tmp/merged.safetensors \\
        gendr_pix/weights/gendr-pix-small-x4.safetensors:1 runs/a/model_ema.safetensors:1 \\
        runs/b/model_ema.safetensors:-1
"""

from __future__ import annotations

import argparse
from pathlib import Path


def parse_term(text: str) -> tuple[Path, float]:
    path, sep, weight = text.rpartition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected FILE:WEIGHT, got {text!r}")
    try:
        return Path(path), float(weight)
    except ValueError:
        raise argparse.ArgumentTypeError(f"weight of {path!r} is not a number: {weight!r}") from None


def merge(terms: list[tuple[Path, float]]):
    """The weighted sum of the models' parameters (fp32), as a model with the first one's config.

    Raises ValueError if the weights do not sum to 1 or the architectures differ.
    """
    import gendr_pix

    total = sum(w for _, w in terms)
    if abs(total - 1) > 1e-6:
        raise ValueError(f"weights must sum to 1 (they sum to {total:g})")
    models = [(p, gendr_pix.load_model(p), w) for p, w in terms]
    first_path, first, _ = models[0]
    for path, model, _ in models[1:]:
        if model.config != first.config:
            raise ValueError(f"{path} has another architecture than {first_path}")
    states = [(m.state_dict(), w) for _, m, w in models]
    merged = {k: sum(w * sd[k].float() for sd, w in states) for k in states[0][0]}
    first.load_state_dict(merged)
    return first


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", type=Path, help="where to write the result (.safetensors)")
    p.add_argument("terms", nargs="+", type=parse_term, metavar="FILE:WEIGHT",
                   help="a checkpoint and its weight; the weights must sum to 1")
    p.add_argument("--fp16", action="store_true", help="store float16 (the bundled file's dtype); default fp32")


def run(args: argparse.Namespace) -> int:
    import torch

    from .checkpoint import CheckpointError, save_model
    from .cli import CLIError

    try:
        model = merge(args.terms)
    except (ValueError, CheckpointError) as e:
        raise CLIError(str(e)) from None
    save_model(model, args.out, dtype=torch.float16 if args.fp16 else None)
    print(f"{args.out}: " + " + ".join(f"{w:g} x {path}" for path, w in args.terms))
    return 0
