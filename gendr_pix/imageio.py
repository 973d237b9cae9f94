"""Reading and writing image files as [1, C, H, W] float tensors in [0, 1] (Pillow)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class ImageFileError(ValueError):
    """An image file is missing or cannot be decoded; the message names the file."""


def load_image(path: str | os.PathLike) -> Tensor:
    """Load RGB or RGBA (palette/greyscale/16-bit converted) as [1, 3 or 4, H, W] float32 in [0, 1]."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
            im = im.convert("RGBA" if has_alpha else "RGB")
            array = np.asarray(im, dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise ImageFileError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ImageFileError(f"{path}: cannot read as an image ({e})") from None
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_pil(image: Tensor) -> Image.Image:
    """[1, 3 or 4, H, W] or [3 or 4, H, W] in [0, 1] -> 8-bit Pillow image (rounded)."""
    if image.ndim == 4:
        image = image[0]
    array = (image.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGBA" if array.shape[-1] == 4 else "RGB")


def save_image(image: Tensor, path: str | os.PathLike, quality: int = 95) -> None:
    """Save as PNG, or JPEG/WebP (by suffix; alpha dropped for JPEG). Writes to a temp name first."""
    path = Path(path)
    im = to_pil(image)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(path.suffix.lower(), "PNG")
    if fmt == "JPEG" and im.mode == "RGBA":
        im = im.convert("RGB")
    tmp = path.with_name(path.name + ".part")
    try:
        im.save(tmp, format=fmt, **({"quality": quality} if fmt != "PNG" else {}))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def find_images(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (not recursive) into image files, sorted per folder.

    Raises ImageFileError for a path that does not exist or a folder with no images.
    """
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            images = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
            if not images:
                raise ImageFileError(f"{p}: folder has no images ({', '.join(IMAGE_SUFFIXES)})")
            found += images
        elif p.is_file():
            found.append(p)
        else:
            raise ImageFileError(f"{p}: no such file or folder")
    return found
