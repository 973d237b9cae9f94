"""`python -m gendr_pix <command>`: a thin argparse layer over the public API.

Each command lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`; the
module is imported only when its command is named, so `upscale` never pays for training imports.
Commands whose `--help` should answer at once import nothing heavy at module level: torch and the core
load when `run` first uses them (`import gendr_pix as g`, then `g.load_model(...)` inside `run`; the
package loads its names lazily). Adding a command is one line in COMMANDS.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module, one-line help)
    "upscale": ("gendr_pix.cli_upscale", "upscale images or folders of images"),
    "info": ("gendr_pix.cli_info", "describe a checkpoint file (format, layout, config, tensors)"),
    "merge": ("gendr_pix.cli_merge", "write a weighted sum of checkpoints (weight averaging, task arithmetic)"),
    "convert": ("gendr_pix.cli_convert", "write any loadable checkpoint in GenDR-Pix's self-describing format"),
    "train": ("gendr_pix.training.cli_train", "train a model from a config file (resumable; torchrun for DDP)"),
    "eval": ("gendr_pix.training.cli_eval", "evaluate upscalers on a folder of HR photos with seeded degradations"),
    "panel": ("gendr_pix.training.cli_panel", "draw 1:1 crops of held-out photos restored by each method"),
    "sweep": ("gendr_pix.training.cli_sweep", "score a grid of upscale settings (ensemble x guidance x grid filter)"),
    "export": ("gendr_pix.training.cli_export", "write a run's raw (not EMA-averaged) generator as a checkpoint"),
    "fetch-data": ("gendr_pix.training.cli_fetch_data", "download the Debian photo packages and split train/val"),
    "fetch-weights": ("gendr_pix.training.cli_fetch_weights", "fetch LPIPS/DISTS weights and reference upscalers"),
    "bench": ("gendr_pix.bench", "measure latency, peak memory and FLOP/s: pixel-space vs latent pipeline"),
}


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def add_set_argument(p: argparse.ArgumentParser) -> None:
    """`--set NAME=VALUE` (repeatable): settings a model file does not store (see gendr_pix.settings)."""
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a setting the model file does not store, e.g. --set timestep=50 --set head_dim=32 "
                        "(prediction, timestep, alpha_bar, head_dim, norm_groups, scale); the loader warns "
                        "about each value it has to assume")


def settings_from(args: argparse.Namespace) -> dict:
    """The parsed `--set` values; raises CLIError naming the bad one."""
    from .settings import parse_settings  # imported when a command runs, like the commands themselves

    try:
        return parse_settings(args.set, origin="--set")
    except ValueError as e:
        raise CLIError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gendr_pix", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log GenDR-Pix's debug details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if a in COMMANDS), None)
    modules = {}
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # only the command that runs is imported
            modules[name] = importlib.import_module(module)
            modules[name].add_arguments(p)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    if args.verbose:  # this package's debug log; other libraries' (Pillow dumps every PNG chunk) stay quiet
        logging.getLogger("gendr_pix").setLevel(logging.DEBUG)
    try:
        return int(modules[args.command].run(args) or 0)
    except CLIError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
