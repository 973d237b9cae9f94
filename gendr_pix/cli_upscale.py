"""`python -m gendr_pix upscale IN [IN ...|DIR] -o OUT`: upscale image files with a GenDR-Pix model.

A batch goes on past a file that fails (one `failed:` line each, exit status 1 at the end); Ctrl-C
stops it at once. Torch loads only when a batch runs (`g.` names resolve lazily), so --help is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import gendr_pix as g

from .choices import (
    COLOR_FIXES,
    DEFAULT_ANTIRING,
    DEFAULT_GRID_FILTER,
    DEFAULT_MODEL,
    ENSEMBLE_SIZES,
    OUTPUT_SUFFIXES,
    PRECISIONS,
)
from .cli import CLIError, add_set_argument, settings_from

FAILED_EXIT = 1
"""Exit status when at least one file failed (the others were upscaled); 2 is for errors before any work."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    p.add_argument("-o", "--output", required=True,
                   help=f"output folder (a name without extension, an existing folder, or one ending in /), or "
                        f"an output file name ({', '.join(OUTPUT_SUFFIXES)}) when there is a single input")
    p.add_argument("--model", help=f"GenDR-Pix checkpoint file or diffusers folder (default: the bundled "
                                   f"{DEFAULT_MODEL.name})")
    add_set_argument(p)
    p.add_argument("--scale", type=float, default=None, help="upscale factor in [1, 8] (default: the model's)")
    p.add_argument("--ensemble", type=int, default=1, choices=ENSEMBLE_SIZES,
                   help="padding self-ensemble size (grid shifts averaged; K times the cost)")
    p.add_argument("--guidance", type=float, default=1.0,
                   help="guidance scale w: 1 = positive condition only; > 1 more detail, < 1 more fidelity")
    p.add_argument("--padcfg", action="store_true", help="fuse guidance with padding (PadCFG) instead of plain CFG")
    p.add_argument("--grid-filter", type=int, nargs="?", const=DEFAULT_GRID_FILTER, default=DEFAULT_GRID_FILTER,
                   metavar="PX",
                   help=f"remove 8x8 grid patterns, no extra pass; PX = window, a multiple of 8 "
                        f"(default: {DEFAULT_GRID_FILTER}; 0 = off)")
    p.add_argument("--antiring", type=float, default=DEFAULT_ANTIRING, metavar="STRENGTH",
                   help=f"keep the output within the input's local range against halos and drawn contours, "
                        f"no extra pass; 0 = off, 1 = full (default: {DEFAULT_ANTIRING:g})")
    p.add_argument("--tile", type=int, default=0,
                   help="tile size in output pixels; 0 = automatic (whole image if it fits in free memory)")
    p.add_argument("--tile-overlap", type=int, default=64, help="tile overlap in output pixels")
    p.add_argument("--color-fix", default="none", choices=COLOR_FIXES, help="keep the input's colours")
    p.add_argument("--device", default="auto", help="auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:1, mps ...")
    p.add_argument("--dtype", default="auto", choices=PRECISIONS,
                   help="compute precision; auto: fp32 on the CPU, bf16 (else fp16) on a GPU")
    p.add_argument("--suffix", default="_gendrpix", help="appended to output file names in a folder")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing output files")
    existing.add_argument("--skip-existing", action="store_true",
                          help="leave existing output files as they are and upscale the rest (resumes a batch)")


def run(args: argparse.Namespace) -> int:
    options = _options(args)
    settings = settings_from(args)
    try:
        files = g.find_images(args.inputs)
    except g.ImageFileError as e:
        raise CLIError(str(e)) from None
    jobs = _pending(list(zip(files, _targets(files, args.output, args.suffix))), args.overwrite, args.skip_existing)
    model = _load(args.model, args.device, args.dtype, settings) if jobs else None

    started, failed = time.perf_counter(), 0
    for n, (src, dst) in enumerate(jobs, 1):
        label = f"[{n}/{len(jobs)}] {src.name}"
        try:
            size = _upscale_file(model, src, dst, options, label)
        except g.Interrupted:
            raise
        except (ValueError, OSError, RuntimeError, MemoryError) as e:  # unreadable, bad pixels, disk full, OOM
            failed += 1
            print(f"\rfailed: {src}: {_reason(e, src)}".ljust(79), file=sys.stderr)
            continue
        print(f"\r{label} -> {dst} ({size})".ljust(79), file=sys.stderr)
    done = len(jobs) - failed
    tail = f"; {failed} failed (see the 'failed:' lines)" if failed else ""
    print(f"done: {done} image(s) in {time.perf_counter() - started:.1f}s{tail}", file=sys.stderr)
    return FAILED_EXIT if failed else 0


def _options(args: argparse.Namespace):
    try:
        return g.UpscaleOptions(
            scale=args.scale, ensemble=args.ensemble, tile=args.tile, tile_overlap=args.tile_overlap,
            guidance=g.Guidance(scale=args.guidance, mode="padcfg" if args.padcfg else "cfg"),
            grid_filter=args.grid_filter, antiring=args.antiring, color_fix=args.color_fix,
        )
    except g.SettingError as e:
        raise CLIError(str(e.named(FLAG_NAMES))) from None
    except ValueError as e:
        raise CLIError(str(e)) from None


FLAG_NAMES: dict[str, str] = {
    # The core's setting names (SettingError placeholders) as this command's flags.
    "scale": "--scale", "ensemble": "--ensemble", "tile": "--tile", "tile_overlap": "--tile-overlap",
    "color_fix": "--color-fix", "grid_filter": "--grid-filter", "antiring": "--antiring", "fp32": "--dtype fp32",
}


def _upscale_file(model, src: Path, dst: Path, options, label: str) -> str:
    """Upscale one file into `dst`, keeping its colour profile and bit depth; returns 'WxH'.

    A setting error (tiles too small for their overlap, a NaN output in half precision) would fail
    every file alike, so it stops the batch as one line naming the flag."""
    image = g.load_image(src)
    try:
        result = g.upscale(model, image, options, progress=_ProgressBar(label))
    except g.SettingError as e:
        print(file=sys.stderr)  # end the progress line
        raise CLIError(str(e.named(FLAG_NAMES))) from None
    # Wide-gamut photos keep their colours, 16-bit PNG/TIFF inputs their precision.
    g.save_image(result, dst, icc_profile=g.read_icc_profile(src), bits=g.read_bit_depth(src))
    return f"{result.shape[-1]}x{result.shape[-2]}"


def _reason(error: Exception, src: Path) -> str:
    """The error as one line, without the file name when the message starts with it."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return lines[0].removeprefix(f"{src}: ")


def _targets(files: list[Path], output: str, suffix: str) -> list[Path]:
    """Output file per input. `output` is a file when there is one input and it ends in an image
    suffix; a folder when it exists as one, ends in a path separator or has no suffix."""
    path = Path(output)
    as_folder = path.is_dir() or output.endswith(("/", os.sep)) or not path.suffix
    if not as_folder and path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise CLIError(f"-o {output}: {path.suffix} is not an image format; give a file ending in "
                       f"{', '.join(OUTPUT_SUFFIXES)}, or a folder (a name without extension, or ending in /)")
    if not as_folder and len(files) > 1:
        raise CLIError(f"-o {output}: {len(files)} inputs need an output folder, not a file name")
    if not as_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
        return [path]
    if path.exists() and not path.is_dir():
        raise CLIError(f"{path}: exists and is not a folder (several inputs need an output folder)")
    path.mkdir(parents=True, exist_ok=True)
    targets = [path / f"{f.stem}{suffix}.png" for f in files]
    if len(set(targets)) < len(targets):
        raise CLIError("two inputs share a file name; upscale them into separate output folders")
    return targets


def _pending(jobs: list[tuple[Path, Path]], overwrite: bool, skip_existing: bool) -> list[tuple[Path, Path]]:
    """The (input, output) pairs to do: existing outputs are an error unless replaced or skipped."""
    existing = [dst for _, dst in jobs if dst.exists()]
    if not existing or overwrite:
        return jobs
    if not skip_existing:
        raise CLIError(f"{existing[0]}: already exists (use --overwrite to replace, or --skip-existing "
                       f"to upscale only the missing ones)")
    print(f"skipping {len(existing)} image(s) whose output exists", file=sys.stderr)
    return [(src, dst) for src, dst in jobs if not dst.exists()]


def _load(path: str | None, device: str, dtype: str, settings: dict):
    from .settings import CLI

    if path is None and not DEFAULT_MODEL.is_file():
        raise CLIError("no model is bundled with this installation yet; pass a GenDR-Pix checkpoint with --model PATH")
    try:
        return g.load_model(path or DEFAULT_MODEL, device=device, dtype=dtype, config_overrides=settings,
                            how_to_set=CLI)
    except ValueError as e:  # CheckpointError, ConfigError, or a device/precision this machine lacks
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
