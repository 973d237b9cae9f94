"""16-bit colour images, which Pillow has no mode for: reading them from PNG and TIFF, writing PNG.

Pillow decodes a 16-bit RGB(A) file to 8 bits, keeping the high byte of each sample (its unpacker for
the file's byte order). Decoding the same file a second time with the byte order swapped keeps the
low bytes instead; the two together are the exact samples, with Pillow's own decoders (all PNG
filters and interlacing, every TIFF compression libtiff reads).
"""

from __future__ import annotations

import logging
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image, ImageOps

log = logging.getLogger(__name__)

_SWAPPED_ORDER = {"B": "L", "L": "B", "N": "B" if sys.byteorder == "little" else "L"}
_COLOUR_MODES = ("RGB", "RGBA")


def _rawmode(im: Image.Image) -> str | None:
    """The raw mode of the file's pixel data (e.g. 'RGB;16B'), from Pillow's decoding plan (`tile`)."""
    modes = {args if isinstance(args, str) else args[0] if args else None for *_, args in im.tile}
    rawmode = modes.pop() if len(modes) == 1 else None
    return rawmode if isinstance(rawmode, str) else None


def _low_byte_rawmode(rawmode: str | None, mode: str) -> str | None:
    """'RGB;16B' -> 'RGB;16L' (and L -> B, native -> the other order); None if not 16-bit colour."""
    if mode not in _COLOUR_MODES or rawmode is None or not rawmode.startswith(f"{mode};16"):
        return None
    order = rawmode[len(mode) + 3:]
    return f"{mode};16{_SWAPPED_ORDER[order]}" if order in _SWAPPED_ORDER else None


def is_wide_colour(im: Image.Image) -> bool:
    """Whether `im` (opened, not yet loaded) holds 16-bit RGB or RGBA samples that `read_wide_colour` reads."""
    return _low_byte_rawmode(_rawmode(im), im.mode) is not None


def read_wide_colour(path: str | os.PathLike, im: Image.Image) -> np.ndarray | None:
    """The 16-bit samples of `im` (opened from `path`, not yet loaded) as uint16 [H, W, 3 or 4],
    turned by the EXIF orientation; None when it is not 16-bit colour or this Pillow cannot decode
    the low bytes (then the caller reads it as 8 bits, with a warning)."""
    rawmode = _rawmode(im)
    low_rawmode = _low_byte_rawmode(rawmode, im.mode)
    if low_rawmode is None:
        if im.mode in _COLOUR_MODES and rawmode and ";16" in rawmode:  # e.g. 16-bit grey + alpha
            log.warning("%s: 16-bit %s samples read as 8 bits", path, rawmode.split(";")[0])
        return None
    try:
        with Image.open(path) as low:
            low.tile = [_with_rawmode(tile, low_rawmode) for tile in low.tile]
            low_bytes = np.asarray(ImageOps.exif_transpose(low))
    except (ValueError, OSError) as e:
        log.warning("%s: 16-bit colour read as 8 bits (this Pillow cannot decode its low bytes: %s)", path, e)
        return None
    high_bytes = np.asarray(ImageOps.exif_transpose(im))
    return (high_bytes.astype(np.uint16) << 8) | low_bytes


def _with_rawmode(tile, rawmode: str):
    args = tile[3]
    args = rawmode if isinstance(args, str) else (rawmode, *args[1:])
    return tile._replace(args=args) if hasattr(tile, "_replace") else (*tile[:3], args)


def write_png16(pixels: np.ndarray, path: str | os.PathLike, icc_profile: bytes | None = None) -> None:
    """uint16 [H, W, 3 or 4] -> a 16-bit RGB or RGBA PNG, tagged with `icc_profile` when given.

    Each row is stored as its difference to the row above (PNG filter "Up") and deflated a block of
    rows at a time, so memory stays at the image plus one block.
    """
    h, w, c = pixels.shape
    colour_type = {3: 2, 4: 6}[c]
    row_bytes = w * c * 2
    deflate = zlib.compressobj(6)
    data = []
    above = np.zeros((1, row_bytes), np.uint8)
    for top in range(0, h, 256):
        rows = pixels[top:top + 256].astype(">u2").reshape(-1, w * c).view(np.uint8)
        up = rows - np.concatenate([above, rows[:-1]])  # uint8: wraps modulo 256, as PNG defines it
        above = rows[-1:]
        data.append(deflate.compress(np.concatenate([np.full((len(rows), 1), 2, np.uint8), up], axis=1).tobytes()))
    data.append(deflate.flush())
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)))
        if icc_profile:
            f.write(_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile)))
        for piece in filter(None, data):
            f.write(_chunk(b"IDAT", piece))
        f.write(_chunk(b"IEND", b""))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
