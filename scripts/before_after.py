"""Make the README's before/after picture: a validation photo (never trained on), degraded with the
seeded real-world pipeline, upscaled x4 by bicubic and by the bundled model, side by side.

    PYTHONPATH=. python scripts/before_after.py /work/data/photos/val/EveningGlow.jpg docs/before_after.jpg \
        --box 1250 800 320 --seed 3 --guidance 1 3
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image, ImageDraw

import gendr_pix
from gendr_pix.training.data import load_rgb
from gendr_pix.training.degrade import DegradeConfig, degrade


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("photo")
    p.add_argument("out")
    p.add_argument("--box", type=int, nargs=3, default=(0, 0, 256), metavar=("X", "Y", "SIZE"),
                   help="HR crop: left, top, edge (multiple of 4)")
    p.add_argument("--model", default="")
    p.add_argument("--setting", default="realesrgan", choices=("realesrgan", "bicubic"))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--guidance", type=float, nargs="+", default=[1.0], help="CFG scales, one panel each")
    a = p.parse_args()
    x, y, s = a.box
    hr = load_rgb(a.photo)[:, y:y + s, x:x + s]
    lq = degrade(hr, DegradeConfig(kind=a.setting), np.random.default_rng(a.seed))[None]
    model = gendr_pix.load_model(a.model) if a.model else gendr_pix.load_default_model()
    big = gendr_pix.resize(lq, (s, s)).clamp(0, 1)
    nearest = torch.nn.functional.interpolate(lq, size=(s, s), mode="nearest")
    panels = [("input (nearest)", nearest), ("bicubic", big)]
    for w in a.guidance:
        options = gendr_pix.UpscaleOptions(guidance=gendr_pix.Guidance(scale=w))
        panels.append((f"GenDR-Pix small, w={w:g}", gendr_pix.upscale(model, lq, options)))
    panels.append(("ground truth (not trained on)", hr[None]))
    canvas = Image.new("RGB", (len(panels) * (s + 4), s + 20), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (label, img) in enumerate(panels):
        arr = (img[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        canvas.paste(Image.fromarray(arr), (i * (s + 4), 20))
        draw.text((i * (s + 4) + 4, 4), label, fill="black")
    canvas.save(a.out, quality=90)


if __name__ == "__main__":
    main()
