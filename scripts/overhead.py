"""What progress and Cancel inside a model pass cost: one whole-image `upscale()` with the per-block
steps, the chunked CPU attention and the striped CPU convolutions (as shipped) against the same call
with all of them switched off (the pass in one piece, as before they existed). Runs alternate; the
median of each is printed.
`--filters` instead compares the default settings with the plain pass (grid filter and anti-ringing
off), i.e. what the default artifact filters cost.

    python scripts/overhead.py [--size 256] [--runs 5] [--threads 2] [--filters]

Rerun it after changing the UNet's forward pass, `gendr_pix/callbacks.py` or the filters.
"""

from __future__ import annotations

import argparse
import statistics
import time
from unittest import mock

import torch

import gendr_pix
from gendr_pix import unet


def _timed(model, image: torch.Tensor, hooks: bool, filters: bool = False) -> float:
    options = gendr_pix.UpscaleOptions(scale=4, tile=0)
    started = time.perf_counter()
    if filters:  # defaults (hooks=True) against the plain pass (hooks=False)
        plain = gendr_pix.UpscaleOptions(scale=4, tile=0, **gendr_pix.PLAIN)
        gendr_pix.upscale(model, image, options if hooks else plain)
    elif hooks:
        gendr_pix.upscale(model, image, options, progress=lambda *_: None, should_stop=lambda: False)
    else:
        with (mock.patch.object(unet, "block_done", lambda: None), mock.patch.object(unet, "stop_point", lambda: None),
              mock.patch.object(unet, "ATTENTION_CHUNK_MACS", 2**62),
              mock.patch.object(unet, "CONV_CHUNK_MACS", 2**62)):
            gendr_pix.upscale(model, image, options)
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256, help="input side in pixels (output: 4x)")
    p.add_argument("--runs", type=int, default=5, help="runs of each, alternating")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--filters", action="store_true", help="compare the default artifact filters with the plain pass")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = gendr_pix.load_default_model()
    image = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    steps = []
    gendr_pix.upscale(model, image, gendr_pix.UpscaleOptions(scale=4, tile=0), progress=lambda d, t, _: steps.append(t))
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.runs):
        for hooks in (False, True):
            times[hooks].append(_timed(model, image, hooks, args.filters))
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"{args.size}px -> {4 * args.size}px x4, one pass of {steps[-1]} steps, {torch.get_num_threads()} threads, "
          f"median of {args.runs}:")
    without, with_ = ("plain pass", "defaults (filters on)") if args.filters else (
        "without steps and stop checks", "with them (as shipped)")
    print(f"  {without + ':':31s} {off:.2f} s   {[round(t, 2) for t in times[False]]}")
    print(f"  {with_ + ':':31s} {on:.2f} s   {[round(t, 2) for t in times[True]]}")
    print(f"  difference: {on - off:+.2f} s ({100 * (on / off - 1):+.1f} %)")


if __name__ == "__main__":
    main()
