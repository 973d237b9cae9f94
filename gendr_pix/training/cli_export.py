"""`python -m gendr_pix export RUN_DIR OUT`: the raw (not EMA-averaged) generator of a pixel-mode run's
`last.pt` as a checkpoint file.

`train` exports only the EMA weights (`model_ema.safetensors`); a run's "raw weights" numbers come from
this file, evaluated with `python -m gendr_pix eval --model OUT`.

    python -m gendr_pix export runs/small-x4-p9 /tmp/p9-raw.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, help="a pixel-mode run folder with last.pt and model_ema.safetensors")
    p.add_argument("out", type=Path, help="where to write the raw generator (.safetensors, fp32)")


def run(args: argparse.Namespace) -> int:
    import torch

    import gendr_pix
    from gendr_pix.cli import CLIError

    from .train import export

    missing = [n for n in ("model_ema.safetensors", "last.pt") if not (args.run_dir / n).is_file()]
    if missing:
        raise CLIError(f"{args.run_dir}: no {' and no '.join(missing)} (expected a pixel-mode run folder "
                       "written by `python -m gendr_pix train`)")
    try:
        model = gendr_pix.load_model(args.run_dir / "model_ema.safetensors")  # same architecture and embeddings
    except gendr_pix.CheckpointError as e:
        raise CLIError(str(e)) from None
    state = torch.load(args.run_dir / "last.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state["generator"])
    export(model, args.out)
    print(f"{args.out}: raw generator of {args.run_dir} at step {state['step']}")
    return 0
