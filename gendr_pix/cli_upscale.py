"""`python -m gendr_pix upscale IN [IN ...|DIR] -o OUT`: upscale image files with a GenDR-Pix model."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from .accel import PRECISIONS, resolve_dtype
from .checkpoint import DEFAULT_MODEL, CheckpointError, load_model
from .cli import CLIError
from .colorfix import COLOR_FIXES
from .ensemble import ENSEMBLE_OFFSETS
from .errors import SettingError
from .gridfilter import DEFAULT_WINDOW
from .guidance import Guidance
from .imageio import ImageFileError, find_images, load_image, read_icc_profile, save_image
from .upscale import UpscaleOptions, upscale


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    p.add_argument("-o", "--output", required=True,
                   help="output folder, or an output file name when there is a single input")
    p.add_argument("--model", help=f"GenDR-Pix checkpoint (default: the bundled {DEFAULT_MODEL.name})")
    p.add_argument("--scale", type=float, default=None, help="upscale factor in [1, 8] (default: the model's)")
    p.add_argument("--ensemble", type=int, default=1, choices=sorted(ENSEMBLE_OFFSETS),
                   help="padding self-ensemble size (grid shifts averaged; K times the cost)")
    p.add_argument("--guidance", type=float, default=1.0,
                   help="guidance scale w: 1 = positive condition only; > 1 more detail, < 1 more fidelity")
    p.add_argument("--padcfg", action="store_true", help="fuse guidance with padding (PadCFG) instead of plain CFG")
    p.add_argument("--grid-filter", type=int, nargs="?", const=DEFAULT_WINDOW, default=0, metavar="PX",
                   help=f"remove 8x8 grid patterns in one cheap pass; PX = window, a multiple of 8 "
                        f"(default with the flag: {DEFAULT_WINDOW}; 0 = off)")
    p.add_argument("--tile", type=int, default=0,
                   help="tile size in output pixels; 0 = automatic (whole image if it fits in free memory)")
    p.add_argument("--tile-overlap", type=int, default=64, help="tile overlap in output pixels")
    p.add_argument("--color-fix", default="none", choices=COLOR_FIXES, help="keep the input's colours")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps ...")
    p.add_argument("--dtype", default="auto", choices=PRECISIONS, help="compute precision")
    p.add_argument("--suffix", default="_gendrpix", help="appended to output file names in a folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")


def run(args: argparse.Namespace) -> int:
    try:
        options = UpscaleOptions(
            scale=args.scale, ensemble=args.ensemble, tile=args.tile, tile_overlap=args.tile_overlap,
            guidance=Guidance(scale=args.guidance, mode="padcfg" if args.padcfg else "cfg"),
            grid_filter=args.grid_filter, color_fix=args.color_fix,
        )
    except SettingError as e:
        raise CLIError(str(e.named(FLAG_NAMES))) from None
    except ValueError as e:
        raise CLIError(str(e)) from None
    try:
        files = find_images(args.inputs)
    except ImageFileError as e:
        raise CLIError(str(e)) from None
    targets = _targets(files, Path(args.output), args.suffix, args.overwrite)
    device = _device(args.device)
    dtype = _dtype(args.dtype, device)
    model = _load(args.model, device, dtype)

    started = time.perf_counter()
    for n, (src, dst) in enumerate(zip(files, targets), 1):
        try:
            image = load_image(src)
        except ImageFileError as e:
            raise CLIError(str(e)) from None
        label = f"[{n}/{len(files)}] {src.name}"
        result = _upscale(model, image, options, label)
        save_image(result, dst, icc_profile=read_icc_profile(src))  # wide-gamut photos keep their colours
        print(f"\r{label} -> {dst} ({result.shape[-1]}x{result.shape[-2]})".ljust(79), file=sys.stderr)
    print(f"done: {len(files)} image(s) in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return 0


FLAG_NAMES: dict[str, str] = {
    # The core's setting names (SettingError placeholders) as this command's flags.
    "scale": "--scale", "ensemble": "--ensemble", "tile": "--tile", "tile_overlap": "--tile-overlap",
    "color_fix": "--color-fix", "grid_filter": "--grid-filter", "fp32": "--dtype fp32",
}


def _upscale(model, image: torch.Tensor, options: UpscaleOptions, label: str) -> torch.Tensor:
    try:
        return upscale(model, image, options, progress=_ProgressBar(label))
    except SettingError as e:  # e.g. tiles too small for their overlap, NaN output
        print(file=sys.stderr)  # end the progress line
        raise CLIError(str(e.named(FLAG_NAMES))) from None


def _targets(files: list[Path], output: Path, suffix: str, overwrite: bool) -> list[Path]:
    single_file = len(files) == 1 and output.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")
    if single_file:
        output.parent.mkdir(parents=True, exist_ok=True)
        targets = [output]
    else:
        if output.exists() and not output.is_dir():
            raise CLIError(f"{output}: exists and is not a folder (several inputs need an output folder)")
        output.mkdir(parents=True, exist_ok=True)
        targets = [output / f"{f.stem}{suffix}.png" for f in files]
        if len(set(targets)) < len(targets):
            raise CLIError("two inputs share a file name; upscale them into separate output folders")
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise CLIError(f"{existing[0]}: already exists (use --overwrite to replace)")
    return targets


def _device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CLIError(f"unknown device {name!r} (try cpu, cuda, cuda:1, mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CLIError("--device cuda was asked for but this torch build sees no CUDA GPU")
    return device


def _dtype(name: str, device: torch.device) -> torch.dtype:
    bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return resolve_dtype(name, device_type=device.type, bf16_ok=bf16_ok, fp16_ok=device.type != "cpu")


def _load(path: str | None, device: torch.device, dtype: torch.dtype):
    if path is None and not DEFAULT_MODEL.is_file():
        raise CLIError("no model is bundled with this installation yet; pass a GenDR-Pix checkpoint with --model PATH")
    try:
        return load_model(path or DEFAULT_MODEL, device=device, dtype=dtype)
    except CheckpointError as e:
        raise CLIError(str(e)) from None


class _ProgressBar:
    """One-line text progress bar on stderr for the current image: the core reports a step per UNet
    block of every model pass, so it moves during a whole-image pass too. Redrawn at most every
    `interval` seconds (blocks of small images take milliseconds) and at the end."""

    def __init__(self, label: str, width: int = 24, interval: float = 0.1) -> None:
        self.label, self.width, self.interval = label, width, interval
        self.start = time.perf_counter()
        self.drawn = -interval

    def __call__(self, done: int, total: int, _preview) -> None:
        elapsed = time.perf_counter() - self.start
        if elapsed - self.drawn < self.interval and done < total:
            return
        self.drawn = elapsed
        filled = self.width * done // max(total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        percent = 100 * done // max(total, 1)
        print(f"\r{self.label} [{bar}] {percent:3d}% {elapsed:.1f}s", end="", file=sys.stderr, flush=True)
