"""Export the raw (not EMA-averaged) generator of a training run's `last.pt` as a checkpoint file.

`train` exports only the EMA weights (`model_ema.safetensors`); the model card's "raw weights" numbers
come from this file, evaluated with `python -m gendr_pix eval --model OUT`.

    PYTHONPATH=. python scripts/export_generator.py runs/small-x4-p9 /tmp/p9-raw.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import gendr_pix
from gendr_pix.training.train import export


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path, help="a pixel-mode run folder with last.pt and model_ema.safetensors")
    p.add_argument("out", type=Path, help="where to write the raw generator (.safetensors, fp32)")
    args = p.parse_args()

    model = gendr_pix.load_model(args.run_dir / "model_ema.safetensors")  # same architecture and embeddings
    state = torch.load(args.run_dir / "last.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state["generator"])
    export(model, args.out)
    print(f"{args.out}: raw generator of {args.run_dir} at step {state['step']}")


if __name__ == "__main__":
    main()
