"""What progress and Cancel inside a model pass cost: one whole-image `upscale()` with the per-block
steps and the chunked CPU attention (as shipped) against the same call with both switched off (the
pass in one piece, as before they existed). Runs alternate; the median of each is printed.

    python scripts/stop_check_overhead.py [--size 256] [--runs 5] [--threads 2]

Rerun it after changing the UNet's forward pass or `gendr_pix/callbacks.py`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from unittest import mock

import torch

import gendr_pix
from gendr_pix import unet


def _timed(model, image: torch.Tensor, hooks: bool) -> float:
    options = gendr_pix.UpscaleOptions(scale=4, tile=0)
    started = time.perf_counter()
    if hooks:
        gendr_pix.upscale(model, image, options, progress=lambda *_: None, should_stop=lambda: False)
    else:
        with (mock.patch.object(unet, "block_done", lambda: None), mock.patch.object(unet, "stop_point", lambda: None),
              mock.patch.object(unet, "ATTENTION_CHUNK_MACS", 2**62)):
            gendr_pix.upscale(model, image, options)
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256, help="input side in pixels (output: 4x)")
    p.add_argument("--runs", type=int, default=5, help="runs of each, alternating")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
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
            times[hooks].append(_timed(model, image, hooks))
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"{args.size}px -> {4 * args.size}px x4, one pass of {steps[-1]} steps, {torch.get_num_threads()} threads, "
          f"median of {args.runs}:")
    print(f"  without steps and stop checks: {off:.2f} s   {[round(t, 2) for t in times[False]]}")
    print(f"  with them (as shipped):        {on:.2f} s   {[round(t, 2) for t in times[True]]}")
    print(f"  difference: {on - off:+.2f} s ({100 * (on / off - 1):+.1f} %)")


if __name__ == "__main__":
    main()
