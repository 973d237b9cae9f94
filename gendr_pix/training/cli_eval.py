"""`python -m gendr_pix eval --hr FOLDER [--model FILE]`: the quality table (see evaluate.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def comma_floats(text: str) -> tuple[float, ...]:
    """"0,1.5" -> (0.0, 1.5); empty items are skipped, so "" is ()."""
    return tuple(float(v) for v in text.split(",") if v.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hr", required=True, help="folder of high-resolution photos (ground truth)")
    parser.add_argument("--model", default="", help="GenDR-Pix checkpoint (default: the bundled model)")
    parser.add_argument("--no-model", action="store_true", help="evaluate only bicubic and the references")
    parser.add_argument("--crop", type=int, default=512, help="centre crop of each photo in px (0 = whole photo)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", default="bicubic,realesrgan", help="comma list of bicubic,realesrgan")
    parser.add_argument("--cfg", default="0,2",
                        help="extra CFG scales besides w=1 (comma list); this and the next three vary the plain pass "
                             "(artifact filters off); the default settings are always reported too")
    parser.add_argument("--padcfg", default="1.5", help="PadCFG scales (comma list)")
    parser.add_argument("--ensemble", default="2,4", help="self-ensemble sizes to report (comma list; '' = none)")
    parser.add_argument("--grid-filter", default="", help="grid filter windows in px to report (comma list)")
    parser.add_argument("--options", action="append", default=[], metavar="SPEC",
                        help="another setting of ours to report: the defaults with the named fields changed, e.g. "
                             "'ensemble=2 antiring=0.5' (keys: ensemble, antiring, grid_filter, color_fix, guidance, "
                             "mode); repeatable")
    parser.add_argument("--no-references", action="store_true", help="skip Real-ESRGAN / SPAN even if cached")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--grey", action="store_true", help="score on the luma of each photo (black and white)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N photos")
    parser.add_argument("--save-dir", default="", help="write every output PNG here")
    parser.add_argument("--json", default="", help="write the full report (per image) here")


def run(args: argparse.Namespace) -> int:
    import gendr_pix
    from gendr_pix.cli import CLIError

    from .evaluate import EvalConfig, evaluate, markdown_table
    from .paths import MissingAssetError

    cfg = EvalConfig(folder=args.hr, crop=args.crop, seed=args.seed, settings=tuple(args.settings.split(",")),
                     cfg_scales=comma_floats(args.cfg), padcfg_scales=comma_floats(args.padcfg),
                     ensembles=tuple(int(v) for v in comma_floats(args.ensemble)),
                     grid_filters=tuple(int(v) for v in comma_floats(args.grid_filter)), options=tuple(args.options),
                     references=not args.no_references, threads=args.threads, save_dir=args.save_dir,
                     limit=args.limit, grey=args.grey)
    try:
        model = None
        if not args.no_model:
            model = gendr_pix.load_model(args.model) if args.model else gendr_pix.load_default_model()
        report = evaluate(model, cfg)
    except (FileNotFoundError, MissingAssetError, gendr_pix.CheckpointError, ValueError) as e:
        raise CLIError(str(e)) from None
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    print(markdown_table(report))
    print(f"load average before/after: {report['load'][0][0]:.2f} / {report['load'][1][0]:.2f}")
    return 0
