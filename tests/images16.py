"""Writers of 16-bit test files that Pillow cannot make, kept minimal and independent of the package:
PNG (filter 0, one IDAT) and TIFF (one strip, uncompressed or deflate, either byte order)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np


def png16(path: Path, pixels: np.ndarray) -> Path:
    """uint16 [H, W, C], C = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA)."""
    h, w, c = pixels.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def tiff16(path: Path, pixels: np.ndarray, *, deflate: bool = False, big_endian: bool = False) -> Path:
    """uint16 [H, W, 3 or 4] as an RGB(A) TIFF with one strip."""
    h, w, c = pixels.shape
    e = ">" if big_endian else "<"
    data = pixels.astype(f"{e}u2").tobytes()
    data = zlib.compress(data) if deflate else data
    n_tags = 11 if c == 4 else 10
    bits_at = 8 + 2 + 12 * n_tags + 4  # BitsPerSample values follow the tag directory
    data_at = bits_at + 2 * c
    tags = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, c, bits_at), (259, 3, 1, 8 if deflate else 1),
            (262, 3, 1, 2), (273, 4, 1, data_at), (277, 3, 1, c), (278, 3, 1, h), (279, 4, 1, len(data)),
            (284, 3, 1, 1)]
    if c == 4:
        tags.append((338, 3, 1, 2))  # ExtraSamples: unassociated alpha
    head = (b"MM" if big_endian else b"II") + struct.pack(f"{e}HI", 42, 8) + struct.pack(f"{e}H", len(tags))
    for tag, kind, count, value in sorted(tags):
        packed = struct.pack(f"{e}H", value) + b"\0\0" if kind == 3 and count == 1 else struct.pack(f"{e}I", value)
        head += struct.pack(f"{e}HHI", tag, kind, count) + packed
    head += struct.pack(f"{e}I", 0) + struct.pack(f"{e}{c}H", *[16] * c)
    assert len(head) == data_at
    path.write_bytes(head + data)
    return path
