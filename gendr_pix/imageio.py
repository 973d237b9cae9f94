"""Reading and writing image files as [1, C, H, W] float tensors in [0, 1] (Pillow; 16-bit colour: `bits16`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from .bits16 import is_wide_colour, read_wide_colour, write_png16
from .choices import IMAGE_SUFFIXES, OUTPUT_SUFFIXES

log = logging.getLogger(__name__)


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
    """Load RGB or RGBA (as `upright_8bit` makes it) as [1, 3 or 4, H, W] float32 in [0, 1], at the
    file's precision: 16-bit PNG and TIFF samples (colour or grey) are divided by 65535, not cut to 8 bits."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            if getattr(im, "n_frames", 1) > 1:
                log.warning("%s: %d frames (animation or pages); only the first is used", path, im.n_frames)
            wide = _upright_16bit(path, im)
            array = np.asarray(upright_8bit(im), dtype=np.float32) / 255.0 if wide is None else wide / 65535.0
    except FileNotFoundError:
        raise ImageFileError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ImageFileError(f"{path}: cannot read as an image ({e})") from None
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def _upright_16bit(path: Path, im: Image.Image) -> np.ndarray | None:
    """16-bit grey (as RGB) or colour samples as float32 [H, W, 3 or 4] in 0..65535, turned upright;
    None for 8-bit files."""
    if im.mode in WIDE_GREY_MODES:
        grey = np.asarray(ImageOps.exif_transpose(im), dtype=np.float32).clip(0, 65535)
        return np.repeat(grey[..., None], 3, axis=-1)
    wide = read_wide_colour(path, im)
    return None if wide is None else wide.astype(np.float32)


def read_bit_depth(path: str | os.PathLike) -> int:
    """16 for a file whose samples `load_image` reads with 16-bit precision (PNG, TIFF), else 8: the
    depth to save its upscale with (`save_image(bits=...)`). 8 for unreadable files."""
    try:
        with Image.open(path) as im:
            return 16 if im.mode in WIDE_GREY_MODES or is_wide_colour(im) else 8
    except (UnidentifiedImageError, OSError, ValueError):
        return 8


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


def save_image(image: Tensor, path: str | os.PathLike, quality: int = 95, icc_profile: bytes | None = None,
               bits: int = 8) -> None:
    """Save as PNG, or JPEG/WebP (by suffix; alpha dropped for JPEG), tagged with `icc_profile` when
    given (untagged means sRGB to viewers). `bits=16` writes a 16-bit PNG (JPEG and WebP have 8 bits).
    Writes to a temp name first. Raises ValueError for a suffix not in `OUTPUT_SUFFIXES`."""
    path = Path(path)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: cannot write {path.suffix or 'a file without an extension'}; "
                         f"image files are written as {', '.join(OUTPUT_SUFFIXES)}")
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    tmp = path.with_name(path.name + ".part")
    try:
        if bits == 16 and fmt == "PNG":
            write_png16(_to_uint16(image), tmp, icc_profile)
        else:
            _save_8bit(to_pil(image), tmp, fmt, quality, icc_profile)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _save_8bit(im: Image.Image, path: Path, fmt: str, quality: int, icc_profile: bytes | None) -> None:
    if fmt == "JPEG" and im.mode == "RGBA":
        im = im.convert("RGB")
    options = {"quality": quality} if fmt != "PNG" else {}
    if icc_profile:
        options["icc_profile"] = icc_profile
    im.save(path, format=fmt, **options)


def _to_uint16(image: Tensor) -> np.ndarray:
    """[1, C, H, W] or [C, H, W] in [0, 1] -> uint16 [H, W, C] (rounded)."""
    if image.ndim == 4:
        image = image[0]
    return (image.detach().float().clamp(0, 1) * 65535 + 0.5).to(torch.int32).permute(1, 2, 0).cpu().numpy().astype(
        np.uint16)


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
