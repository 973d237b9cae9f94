"""`python -m gendr_pix panel --out FILE`: the visual panel of held-out crops (see panel.py)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--photos", default="data/photos/panel",
                        help="folder of the panel photos (default: what `fetch-data` writes)")
    parser.add_argument("--out", required=True, help="image to write (.jpg or .png)")
    parser.add_argument("--model", default="", help="GenDR-Pix checkpoint (default: the bundled model)")
    parser.add_argument("--default", default="", metavar="SPEC",
                        help="settings of the 'default' column as in eval --options (default: the defaults), e.g. "
                             "'grid_filter=0 antiring=0' for the plain pass")
    parser.add_argument("--recommended", default="", metavar="SPEC",
                        help="settings of the 'recommended' column (default: those the README recommends)")
    parser.add_argument("--crops", default="", metavar="KINDS",
                        help="only these crops, comma list of what they show (face, machinery, fur, foliage, text, "
                             "sky; default: all)")
    parser.add_argument("--inputs", default="clean,noisy/JPEG", help="input rows per crop: clean, noisy/JPEG or both")
    parser.add_argument("--size", type=int, default=128, help="crop edge in output px (shown at 1:1)")
    parser.add_argument("--no-references", action="store_true", help="leave out Real-ESRGAN even if cached")
    parser.add_argument("--quality", type=int, default=88, help="JPEG quality")
    parser.add_argument("--threads", type=int, default=2)


def run(args: argparse.Namespace) -> int:
    import torch

    import gendr_pix
    from gendr_pix.cli import CLIError

    from .evaluate import options_from_spec
    from .panel import CROPS, RECOMMENDED, SETTINGS, make_panel

    torch.set_num_threads(args.threads)
    kinds = [k.strip() for k in args.crops.split(",") if k.strip()]
    crops = tuple(c for c in CROPS if not kinds or any(c.what.startswith(k) for k in kinds))
    inputs = tuple(i.strip() for i in args.inputs.split(",") if i.strip())
    if not crops or not inputs or set(inputs) - set(SETTINGS):
        raise CLIError(f"--crops {args.crops!r} / --inputs {args.inputs!r}: choose crops from "
                       f"{', '.join(c.what for c in CROPS)} and inputs from {', '.join(SETTINGS)}")
    try:
        default = options_from_spec(args.default)
        recommended = options_from_spec(args.recommended) if args.recommended else RECOMMENDED
        model = gendr_pix.load_model(args.model) if args.model else gendr_pix.load_default_model()
        image = make_panel(model, args.photos, default=default, recommended=recommended,
                           crops=crops, settings=inputs, size=args.size, references=not args.no_references)
    except (FileNotFoundError, ValueError, gendr_pix.CheckpointError) as e:
        raise CLIError(str(e)) from None
    image.save(args.out, quality=args.quality)
    print(args.out)
    return 0
