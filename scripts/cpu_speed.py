"""CPU time of an x4 upscale: the bundled model against Real-ESRGAN x4plus and SPAN (issue 4's speed target).

The eval's per-image times share the CPU with scoring and other jobs; this script times only the
upscalers, on random inputs, best of N after one warm-up run, with the same thread count for all.
Run it on an otherwise idle machine; the references need `python -m gendr_pix fetch-weights`.

    PYTHONPATH=. python scripts/cpu_speed.py --sizes 128 256 --threads 2
"""

from __future__ import annotations

import argparse

import torch

import gendr_pix
from gendr_pix.bench.measure import cpu_name, time_runs
from gendr_pix.training.references import NcnnUpscaler, available, missing_hint

CPU = torch.device("cpu")


def best_time(fn, x: torch.Tensor, repeats: int) -> float:
    """Fastest of `repeats` calls after one warm-up (allocations, ncnn's first-run setup)."""
    return min(time_runs(lambda: fn(x), CPU, warmup=1, repeats=repeats).runs_s)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="input side lengths in px")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--model", help="GenDR-Pix checkpoint (default: the bundled model)")
    p.add_argument("--ours-only", action="store_true", help="skip Real-ESRGAN / SPAN")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    model = gendr_pix.load_model(args.model) if args.model else gendr_pix.load_default_model()
    methods = {
        "GenDR-Pix small, w=1": lambda x: gendr_pix.upscale(model, x, gendr_pix.UpscaleOptions(scale=4)),
        "GenDR-Pix small, w=1 + grid filter 64 px": lambda x: gendr_pix.upscale(
            model, x, gendr_pix.UpscaleOptions(scale=4, grid_filter=64)),
        "GenDR-Pix small, ensemble x4": lambda x: gendr_pix.upscale(
            model, x, gendr_pix.UpscaleOptions(scale=4, ensemble=4)),
    }
    found = {} if args.ours_only else available()
    if not found and not args.ours_only:
        print(f"no reference upscalers: {missing_hint()}; timing ours only")
    methods.update({name: NcnnUpscaler(path, args.threads) for name, path in found.items()})

    print(f"{cpu_name()}, {args.threads} threads, best of {args.repeats}, seconds per x4 upscale\n")
    print("| method | " + " | ".join(f"{s}² -> {4 * s}²" for s in args.sizes) + " |")
    print("|---|" + "---|" * len(args.sizes))
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.rand(1, 3, s, s, generator=gen) for s in args.sizes]
    with torch.inference_mode():
        for name, fn in methods.items():
            cells = [f"{best_time(fn, x, args.repeats):.3f}" for x in inputs]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
