"""Make the README's before/after picture: a validation photo (never trained on), degraded x4 with
seeded degradations (one row per setting: plain bicubic, then the real-world pipeline), upscaled x4 by
bicubic and by the bundled model, side by side.

    PYTHONPATH=. python scripts/before_after.py data/photos/val/EveningGlow.jpg docs/before_after.jpg \
        --box 1250 800 320 --seed 3 --guidance 1 2
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image, ImageDraw

import gendr_pix
from gendr_pix.training.data import load_rgb
from gendr_pix.training.degrade import DegradeConfig, degrade


def _panels(model, hr: torch.Tensor, setting: str, seed: int, guidance: list[float]) -> list:
    s = hr.shape[-1]
    lq = degrade(hr, DegradeConfig(kind=setting), np.random.default_rng(seed))[None]
    big = gendr_pix.resize(lq, (s, s)).clamp(0, 1)
    nearest = torch.nn.functional.interpolate(lq, size=(s, s), mode="nearest")
    name = {"bicubic": "bicubic", "realesrgan": "real-world"}[setting]
    panels = [(f"input ({name} x4, nearest)", nearest), ("bicubic", big)]
    for w in guidance:
        options = gendr_pix.UpscaleOptions(guidance=gendr_pix.Guidance(scale=w))
        panels.append((f"GenDR-Pix small, w={w:g}", gendr_pix.upscale(model, lq, options)))
    panels.append(("ground truth (not trained on)", hr[None]))
    return panels


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("photo")
    p.add_argument("out")
    p.add_argument("--box", type=int, nargs=3, default=(0, 0, 256), metavar=("X", "Y", "SIZE"),
                   help="HR crop: left, top, edge (multiple of 4)")
    p.add_argument("--model", default="")
    p.add_argument("--settings", nargs="+", default=["bicubic", "realesrgan"], choices=("bicubic", "realesrgan"),
                   help="degradations, one row each")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--guidance", type=float, nargs="+", default=[1.0], help="CFG scales, one panel each")
    a = p.parse_args()
    x, y, s = a.box
    hr = load_rgb(a.photo)[:, y:y + s, x:x + s]
    model = gendr_pix.load_model(a.model) if a.model else gendr_pix.load_default_model()
    rows = [_panels(model, hr, setting, a.seed, a.guidance) for setting in a.settings]
    canvas = Image.new("RGB", (len(rows[0]) * (s + 4), len(rows) * (s + 24)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, panels in enumerate(rows):
        top = r * (s + 24)
        for i, (label, img) in enumerate(panels):
            arr = (img[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            canvas.paste(Image.fromarray(arr), (i * (s + 4), top + 20))
            draw.text((i * (s + 4) + 4, top + 4), label, fill="black")
    canvas.save(a.out, quality=90)


if __name__ == "__main__":
    main()
