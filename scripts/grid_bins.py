"""Where a set's grid score comes from: per-photo grid-bin energies and the local 8-periodic pattern.

For each photo of an `eval` set (same crops and seeded degradations as `eval`): the grid score of the
model, Real-ESRGAN (when cached) and the resized input; the energy of the strongest grid bins for the
photo, the resized input, the model and Real-ESRGAN; the energy of the small input at its Nyquist
frequency (at x4 the output's lowest grid frequency); and the rms, in 8-bit levels, of the local
8-periodic pattern (`gridfilter.grid_pattern`, 64-px blocks) that the model and the photo hold beyond
the resized input, per 64-px tile (worst tile / mean). The model card's phase 19 and 22 notes quote it:

    PYTHONPATH=. python scripts/grid_bins.py --hr data/photos/val --setting realesrgan [--grey]
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor

import gendr_pix
from gendr_pix.gridfilter import grid_pattern
from gendr_pix.training.evaluate import EvalConfig, degraded, hr_crops
from gendr_pix.training.fourier import grid_mask
from gendr_pix.training.references import NcnnUpscaler, available
from gendr_pix.upscale import resize

TILE = 64


def spectrum(x: Tensor) -> Tensor:
    """[1, C, H, W] -> [H, W] energy per FFT bin, summed over channels (the grid score's units)."""
    return torch.fft.fft2(x.float(), norm="forward").abs().pow(2).sum(1)[0]


def pattern_levels(change: Tensor) -> tuple[float, float]:
    """rms of the local 8-periodic part of `change` per 64-px tile, in 8-bit levels: (worst, mean)."""
    rms = grid_pattern(change, TILE).pow(2).mean(1).sqrt()[0]
    h, w = (n // TILE * TILE for n in rms.shape)
    tiles = rms[:h, :w].reshape(h // TILE, TILE, w // TILE, TILE).mean((1, 3)) * 255
    return tiles.max().item(), tiles.mean().item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hr", required=True, help="folder of HR photos, as for `eval`")
    p.add_argument("--model", default="", help="checkpoint (default: the bundled model)")
    p.add_argument("--setting", default="realesrgan", choices=("bicubic", "realesrgan"))
    p.add_argument("--crop", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grey", action="store_true")
    p.add_argument("--bins", type=int, default=3, help="strongest grid bins of the model's output to list")
    args = p.parse_args()

    torch.set_num_threads(2)
    model = gendr_pix.load_model(args.model) if args.model else gendr_pix.load_default_model()
    refs = available()
    resr = NcnnUpscaler(refs["Real-ESRGAN x4plus"]) if "Real-ESRGAN x4plus" in refs else None
    cfg = EvalConfig(folder=args.hr, crop=args.crop, seed=args.seed, grey=args.grey)
    for index, (name, hr) in enumerate(hr_crops(cfg)):
        lq = degraded(hr, args.setting, 4, args.seed, index)
        size = hr.shape[-2:]
        with torch.inference_mode():
            outs = {"photo": hr[None], "input": resize(lq, tuple(size)).clamp(0, 1),
                    "ours": gendr_pix.upscale(model, lq, gendr_pix.UpscaleOptions(scale=4))[..., :size[0], :size[1]]}
            if resr is not None:
                outs["Real-ESRGAN"] = resr(lq)[..., :size[0], :size[1]]
        mask = grid_mask(*size)
        spec = {k: spectrum(v) for k, v in outs.items()}
        total = {k: s[mask].sum().item() for k, s in spec.items()}
        print(f"{name}: grid " + ", ".join(f"{k} {total[k] / total['photo']:.2f}" for k in outs if k != "photo"))
        ys, xs = torch.nonzero(mask, as_tuple=True)
        for j in torch.argsort(spec["ours"][mask], descending=True)[: args.bins]:
            y, x = ys[j].item(), xs[j].item()
            print(f"  bin ({y}, {x}) x1e6: " + ", ".join(f"{k} {s[y, x].item() * 1e6:.2f}" for k, s in spec.items()))
        small = spectrum(lq)
        ny, nx = (n // 2 for n in small.shape)
        print(f"  small input at its Nyquist frequency x1e6: {(small[ny, 0] + small[0, nx]).item() * 1e6:.2f}")
        ours, photo = pattern_levels(outs["ours"] - outs["input"]), pattern_levels(outs["photo"] - outs["input"])
        print(f"  8-periodic pattern beyond the input, 8-bit levels (worst tile / mean): ours {ours[0]:.2f} / "
              f"{ours[1]:.2f}, photo {photo[0]:.2f} / {photo[1]:.2f}")


if __name__ == "__main__":
    main()
