"""Write a pair folder (`data.pairs` of a training config) whose targets are a reference upscaler's outputs.

Each pair i is sample i of the training data pipeline (`PairDataset`, seeded, second-order real-world
degradation only) at `--crop` pixels: `lq/` the degraded input, `hq/` the teacher's x4 output on it,
`gt/` the photo crop itself (for checking the teacher; training reads only lq/ and hq/). Why: against
a heavily degraded input the ground truth is one of many plausible images and L1/LPIPS to it pull
towards their blurry mean; a teacher's output is a deterministic function of the input and so a target
a small student can actually fit. Existing files are kept, so an interrupted run continues.

    python scripts/teacher_pairs.py --count 260 --out data/teacher-pairs/realesrgan-x4plus
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gendr_pix.training.data import DataConfig, PairDataset
from gendr_pix.training.degrade import DegradeConfig
from gendr_pix.training.references import NcnnUpscaler, available, missing_hint


def save_png(img: torch.Tensor, path: Path) -> None:
    arr = (img.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(arr).save(tmp)
    tmp.replace(path)  # a killed run never leaves a truncated file behind


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", default="data/photos/train")
    ap.add_argument("--out", required=True)
    ap.add_argument("--teacher", default="Real-ESRGAN x4plus", help="a reference model of `fetch-weights`")
    ap.add_argument("--count", type=int, default=250)
    ap.add_argument("--crop", type=int, default=512, help="HQ edge of each pair (lq is crop / 4)")
    ap.add_argument("--min-scale", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    models = available()
    if args.teacher not in models:
        raise SystemExit(f"teacher {args.teacher!r} not found (have: {', '.join(models) or 'none'}): "
                         f"{missing_hint()}")
    teacher = NcnnUpscaler(models[args.teacher], threads=args.threads)
    data = PairDataset(DataConfig(folder=args.photos, crop=args.crop, min_scale=args.min_scale, bicubic_prob=0.0,
                                  seed=args.seed), DegradeConfig(kind="realesrgan", scale=4))
    out = Path(args.out)
    for sub in ("lq", "hq", "gt"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    (out / "pairs.json").write_text(json.dumps(vars(args), indent=1) + "\n")
    t0, made = time.time(), 0
    for i in range(args.count):
        name = f"{i:05d}.png"
        if all((out / sub / name).is_file() for sub in ("lq", "hq", "gt")):
            continue
        sample = data[i]
        lq = (sample["lq"].clamp(0, 1) * 255).round() / 255  # the teacher sees exactly the saved 8-bit input
        with torch.no_grad():
            target = teacher(lq[None])[0]
        save_png(sample["hq"], out / "gt" / name)
        save_png(lq, out / "lq" / name)
        save_png(target, out / "hq" / name)  # last: a pair counts as done only when its target exists
        made += 1
        if made % 10 == 0:
            print(f"{i + 1}/{args.count} pairs, {(time.time() - t0) / made:.1f} s each", flush=True)
    print(f"done: {args.count} pairs in {out} ({made} new, {time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
