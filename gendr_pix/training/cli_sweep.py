"""`python -m gendr_pix sweep --hr FOLDER`: a settings sweep for the node defaults: padding self-ensemble
size x guidance mode x guidance scale x grid filter window x anti-ringing strength (and optionally a colour
fix), each scored
like `eval` does (same seeded inputs, same metrics).

    python -m gendr_pix sweep --hr data/photos/val --json sweep.json \\
        --ensemble 1,2,4 --modes cfg,padcfg --scales 1,1.5,2

Prints one markdown table per degradation setting; `s / image` is wall time per 128² -> 512² image
(only meaningful on an otherwise idle machine; the load average is printed at the end).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .cli_eval import comma_floats


def methods(model, ensembles: list[int], modes: list[str], scales: list[float], color_fix: str,
            grid_filters: list[int], antirings: tuple[float, ...] = (0.0,)) -> dict:
    """One upscale callable per point of the grid, named as the tables show it."""
    import gendr_pix

    out = {}
    for k in ensembles:
        for mode in modes:
            for w in scales:
                for px in grid_filters:
                    for ar in antirings:
                        options = gendr_pix.UpscaleOptions(scale=4.0, ensemble=k, color_fix=color_fix, grid_filter=px,
                                                           antiring=ar, guidance=gendr_pix.Guidance(scale=w, mode=mode))
                        name = (f"ensemble {k}, {mode} w={w:g}" + (f", grid filter {px} px" if px else "")
                                + (f", anti-ringing {ar:g}" if ar else "")
                                + (f", {color_fix} colour fix" if color_fix != "none" else ""))
                        out[name] = lambda lq, o=options: gendr_pix.upscale(model, lq, o)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hr", required=True, help="folder of high-resolution photos (ground truth)")
    p.add_argument("--model", default="", help="GenDR-Pix checkpoint (default: the bundled model)")
    p.add_argument("--crop", type=int, default=512, help="centre crop of each photo in px (0 = whole photo)")
    p.add_argument("--settings", default="bicubic,realesrgan", help="comma list of bicubic,realesrgan")
    p.add_argument("--ensemble", default="1,2,4", help="self-ensemble sizes (comma list)")
    p.add_argument("--modes", default="cfg,padcfg", help="guidance modes (comma list of cfg,padcfg)")
    p.add_argument("--scales", default="1,1.5,2", help="guidance scales (comma list)")
    p.add_argument("--color-fix", default="none", help="colour fix for every point: none, wavelet or adain")
    p.add_argument("--grid-filter", default="0", help="grid filter windows in px (comma list; 0 = off)")
    p.add_argument("--antiring", default="0", help="anti-ringing strengths (comma list; 0 = off)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default="", help="write the full report (per image, and the grid) here")


def run(args: argparse.Namespace) -> int:
    import torch

    import gendr_pix
    from gendr_pix.cli import CLIError

    from .evaluate import EvalConfig, evaluate_methods, markdown_table

    torch.set_num_threads(args.threads)
    try:
        model = gendr_pix.load_model(args.model) if args.model else gendr_pix.load_default_model()
        cfg = EvalConfig(folder=args.hr, crop=args.crop, settings=tuple(args.settings.split(",")),
                         threads=args.threads)
        grid = methods(model, [int(k) for k in comma_floats(args.ensemble)], args.modes.split(","),
                       list(comma_floats(args.scales)), args.color_fix,
                       [int(v) for v in comma_floats(args.grid_filter)], comma_floats(args.antiring))
        report = evaluate_methods(grid, cfg)
    except (FileNotFoundError, gendr_pix.CheckpointError, ValueError) as e:
        raise CLIError(str(e)) from None
    # the grid that made this file (report["config"] only holds the eval's inputs)
    report["sweep"] = {k: v for k, v in vars(args).items() if k not in ("command", "verbose")}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    print(markdown_table(report))
    print(f"load average before/after: {report['load'][0][0]:.2f} / {report['load'][1][0]:.2f}")
    return 0
