"""What the front ends offer (CLI choices and help, node combos), as plain data.

Nothing here imports torch, so `python -m gendr_pix upscale --help` builds its parser at once. The
modules that act on these names import them from here.
"""

from __future__ import annotations

from pathlib import Path

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "bf16")
"""Precision names every front end takes: the CLI's --dtype, the API's dtype=, the loader node's
precision, bench variants (`accel.DTYPES` maps them to torch dtypes; `auto` is `accel.resolve_dtype`)."""

COLOR_FIXES: tuple[str, ...] = ("none", "wavelet", "adain")

ENSEMBLE_SIZES: tuple[int, ...] = (1, 2, 4, 8)
"""Padding self-ensemble sizes (the keys of `ensemble.ENSEMBLE_OFFSETS`)."""

GRID_FILTER_WINDOW = 64
"""Pixels: wide enough to see a faint pattern on a smooth patch, narrow enough to follow one that
fades across the image. On the validation photos' real-world inputs 32 / 64 / 128 px gave LPIPS
0.317 / 0.315 / 0.314 and left 4 / 4 / 7 % excess grid energy in 64-px tiles (plain pass: 9 %). With
phase 26, 256 px costs 0.8 % less LPIPS but leaves almost all of the local lattice (docs/QUALITY.md,
"Grid artifacts in detail")."""

DEFAULT_GRID_FILTER = GRID_FILTER_WINDOW
DEFAULT_ANTIRING = 0.5
"""The artifact filters are on by default (`UpscaleOptions.grid_filter`, `.antiring`; the nodes' model
value; the CLI's --grid-filter, --antiring): together they cost no model pass. Anti-ringing at 0.5
takes off most of what full strength does to the bundled model's halos on clean inputs at about half
its LPIPS/DISTS cost (docs/QUALITY.md, "Artifact scores"). 0 turns each off."""

DEFAULT_MODEL = Path(__file__).parent / "weights" / "gendr-pix-small-x4.safetensors"
"""The small x4 model shipped inside the package (trained by this repo's own training code)."""

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
"""Files read as images (inputs, training photos)."""

OUTPUT_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp")
"""Formats `save_image` writes. PNG keeps 16 bits per channel; JPEG and WebP have 8."""
