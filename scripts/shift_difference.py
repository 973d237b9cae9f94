"""How much a model's plain pass changes when its input moves against the 8x8 shuffle grid.

A model that were equivariant to shifts would give the same picture, moved. Ours draws some detail
(faint strokes on skin, grain) at places that depend on where the grid falls; this measures how much:
the mean absolute difference, in 8-bit levels, between the pass at offset (0, 0) and at each of a few
grid offsets (cropped back into place), over the evaluation photos' clean and noisy inputs.
`loss.shift_consistency` trains against it; the training log quotes it per phase.

    python scripts/shift_difference.py [--model FILE ...] [--hr data/photos/val] [--crop 256]
"""

from __future__ import annotations

import argparse

import torch

import gendr_pix
from gendr_pix.ensemble import on_shifted_grid
from gendr_pix.training.evaluate import EvalConfig, degraded, hr_crops
from gendr_pix.training.objectives import lq_to_input

OFFSETS = ((4, 4), (4, 0), (0, 4), (2, 2), (6, 2), (1, 5))
"""Grid offsets (dy, dx) compared with (0, 0): the half-cell ones of the self-ensemble and some others."""


def shift_difference(model: gendr_pix.GenDRPix, hr_folder: str, crop_px: int) -> dict[str, float]:
    """{"bicubic": levels, "realesrgan": levels}: mean |pass(x) - pass(x moved)| over photos and offsets."""
    photos = hr_crops(EvalConfig(folder=hr_folder, crop=crop_px))
    ctx = model.positive.expand(1, -1, -1)
    inner = (..., slice(8, -8), slice(8, -8))  # leave out the padding's own border
    out = {}
    for setting in ("bicubic", "realesrgan"):
        diffs = []
        for index, (_, hr) in enumerate(photos):
            x = lq_to_input(degraded(hr, setting, 4, 0, index), hr.shape[-2:])
            with torch.inference_mode():
                y = model(x, ctx)
                for dy, dx in OFFSETS:
                    moved = on_shifted_grid(lambda t: model(t, ctx), x, dy, dx)
                    diffs.append(float((y - moved)[inner].abs().mean()) * 255 / 2)
        out[setting] = sum(diffs) / len(diffs)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", default=[], help="checkpoint(s); default: the bundled model")
    p.add_argument("--hr", default="data/photos/val")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for path in args.model or [""]:
        model = (gendr_pix.load_model(path) if path else gendr_pix.load_default_model()).float().eval()
        d = shift_difference(model, args.hr, args.crop)
        print(f"{path or 'bundled'}: clean {d['bicubic']:.2f}  noisy {d['realesrgan']:.2f} levels")


if __name__ == "__main__":
    main()
