"""`python -m gendr_pix train --config FILE [--set section.key=value ...]`: run or resume a training run.

Multi-GPU: `torchrun --nproc_per_node N -m gendr_pix train --config FILE` (DDP; one process per GPU).
"""

from __future__ import annotations

import argparse
import logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training config (.toml or .json)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value (JSON-parsed), e.g. --set run.steps=100")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to log.jsonl)")


def run(args: argparse.Namespace) -> int:
    from gendr_pix.cli import CLIError

    from .config import load_config
    from .train import train

    try:
        cfg = load_config(args.config, args.set)
    except (OSError, ValueError) as e:
        raise CLIError(str(e)) from None
    logging.getLogger(__name__).info("training %s -> %s", cfg.run.mode, cfg.run.dir)
    trainer = train(cfg, progress=not args.no_progress)
    logging.getLogger(__name__).info("done at step %d; model: %s", trainer.step, trainer.dir / "model_ema.safetensors")
    return 0
