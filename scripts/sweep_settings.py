"""Settings sweep for the node defaults: padding self-ensemble size x guidance mode x guidance scale
x grid filter window (and optionally a colour fix), each scored like `eval` does (same seeded inputs,
same metrics).

    PYTHONPATH=. python scripts/sweep_settings.py --hr data/photos/val --json sweep.json \
        --ensemble 1,2,4 --modes cfg,padcfg --scales 1,1.5,2

Prints one markdown table per degradation setting; `s / image` is wall time per 128² -> 512² image
(only meaningful on an otherwise idle machine; the load average is printed at the end).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import gendr_pix
from gendr_pix.training.cli_eval import comma_floats
from gendr_pix.training.evaluate import EvalConfig, evaluate_methods, markdown_table


def methods(model: gendr_pix.GenDRPix, ensembles: list[int], modes: list[str], scales: list[float],
            color_fix: str, grid_filters: list[int]) -> dict:
    out = {}
    for k in ensembles:
        for mode in modes:
            for w in scales:
                for px in grid_filters:
                    options = gendr_pix.UpscaleOptions(scale=4.0, ensemble=k, color_fix=color_fix, grid_filter=px,
                                                       guidance=gendr_pix.Guidance(scale=w, mode=mode))
                    name = (f"ensemble {k}, {mode} w={w:g}" + (f", grid filter {px} px" if px else "")
                            + (f", {color_fix} colour fix" if color_fix != "none" else ""))
                    out[name] = lambda lq, o=options: gendr_pix.upscale(model, lq, o)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hr", required=True)
    p.add_argument("--model", default="")
    p.add_argument("--crop", type=int, default=512)
    p.add_argument("--settings", default="bicubic,realesrgan")
    p.add_argument("--ensemble", default="1,2,4")
    p.add_argument("--modes", default="cfg,padcfg")
    p.add_argument("--scales", default="1,1.5,2")
    p.add_argument("--color-fix", default="none")
    p.add_argument("--grid-filter", default="0", help="grid filter windows in px (comma list; 0 = off)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default="")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model = gendr_pix.load_model(a.model) if a.model else gendr_pix.load_default_model()
    cfg = EvalConfig(folder=a.hr, crop=a.crop, settings=tuple(a.settings.split(",")), threads=a.threads)
    ensembles = [int(k) for k in comma_floats(a.ensemble)]
    report = evaluate_methods(methods(model, ensembles, a.modes.split(","), list(comma_floats(a.scales)),
                                      a.color_fix, [int(v) for v in comma_floats(a.grid_filter)]), cfg)
    report["sweep"] = vars(a)  # the grid that made this file (report["config"] only holds the eval's inputs)
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1))
    print(markdown_table(report))
    print(f"load average before/after: {report['load'][0][0]:.2f} / {report['load'][1][0]:.2f}")


if __name__ == "__main__":
    main()
