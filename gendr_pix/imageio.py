"""Reading and writing image files as [1, C, H, W] float tensors in [0, 1] (Pillow)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class ImageFileError(ValueError):
    """An image file is missing or cannot be decoded; the message names the file."""


ImageFileError.__module__ = "gendr_pix"  # its public name, as error dialogs print it


WIDE_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
"""Pillow's modes for 16-bit greyscale (PNG, TIFF): `convert("RGB")` clips their 0..65535 to 0..255."""


def upright_8bit(im: Image.Image, keep_alpha: bool = True) -> Image.Image:
    """RGB, or RGBA when the file has transparency and `keep_alpha`, as the photo is meant to be seen:
    turned by its EXIF orientation (phone photos), 16-bit greyscale scaled to 8 bits, not clipped to white."""
    im = ImageOps.exif_transpose(im)
    if im.mode in WIDE_GREY_MODES:
        im = Image.fromarray((np.asarray(im, dtype=np.float32) / 257).round().clip(0, 255).astype(np.uint8))
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    return im.convert("RGBA" if has_alpha and keep_alpha else "RGB")


def load_image(path: str | os.PathLike) -> Tensor:
    """Load RGB or RGBA (see `upright_8bit`) as [1, 3 or 4, H, W] float32 in [0, 1]."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            if getattr(im, "n_frames", 1) > 1:
                log.warning("%s: %d frames (animation or pages); only the first is used", path, im.n_frames)
            array = np.asarray(upright_8bit(im), dtype=np.float32) / 255.0
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


def read_icc_profile(path: str | os.PathLike) -> bytes | None:
    """The file's embedded colour profile (Display P3, Adobe RGB...), to give the upscale the same one."""
    try:
        with Image.open(path) as im:
            return im.info.get("icc_profile") or None
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def save_image(image: Tensor, path: str | os.PathLike, quality: int = 95, icc_profile: bytes | None = None) -> None:
    """Save as PNG, or JPEG/WebP (by suffix; alpha dropped for JPEG), tagged with `icc_profile` when
    given (untagged means sRGB to viewers). Writes to a temp name first."""
    path = Path(path)
    im = to_pil(image)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(path.suffix.lower(), "PNG")
    if fmt == "JPEG" and im.mode == "RGBA":
        im = im.convert("RGB")
    options = {"quality": quality} if fmt != "PNG" else {}
    if icc_profile:
        options["icc_profile"] = icc_profile
    tmp = path.with_name(path.name + ".part")
    try:
        im.save(tmp, format=fmt, **options)
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
