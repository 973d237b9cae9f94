"""Image files as users have them: phone photos turned by EXIF, 16-bit greyscale scans, palettes with
transparency. Each must load as it is seen in a viewer, for upscaling and as training data alike."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from images16 import png16, tiff16
from PIL import Image

import gendr_pix as g
from gendr_pix.imageio import ImageFileError
from gendr_pix.training.data import read_rgb8

RAMP = np.linspace(0, 1, 40 * 60, dtype=np.float64).reshape(40, 60)


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:, :10] = 255  # a white band on the left edge of the stored pixels
    im = Image.fromarray(pixels)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view", as phones write it
    im.save(tmp_path / "phone.jpg", exif=exif, quality=100)
    loaded = g.load_image(tmp_path / "phone.jpg")
    assert loaded.shape == (1, 3, 60, 40)
    assert loaded[0, :, :8].mean() > 0.9 and loaded[0, :, -40:].mean() < 0.1  # the band is now on top
    assert read_rgb8(tmp_path / "phone.jpg").shape == (60, 40, 3)


def test_16bit_greyscale_is_scaled_not_clipped(tmp_path):
    Image.fromarray((RAMP * 65535).round().astype(np.uint16)).save(tmp_path / "scan16.png")
    assert Image.open(tmp_path / "scan16.png").mode.startswith("I")
    loaded = g.load_image(tmp_path / "scan16.png")
    assert loaded.shape == (1, 3, 40, 60)
    assert torch.allclose(loaded[0, 0].double(), torch.from_numpy(RAMP), atol=0.5 / 255 + 1e-6)
    assert (loaded[0, 0] == loaded[0, 2]).all()
    assert abs(read_rgb8(tmp_path / "scan16.png").mean() / 255 - 0.5) < 0.01


def test_transparency_is_kept_for_upscaling_and_dropped_for_training(tmp_path):
    pixels = (np.arange(40 * 60 * 3) % 251).astype(np.uint8).reshape(40, 60, 3)
    Image.fromarray(pixels).convert("P").save(tmp_path / "palette.png", transparency=0)
    Image.fromarray(pixels).convert("LA").save(tmp_path / "grey_alpha.png")
    for name in ("palette.png", "grey_alpha.png"):
        assert g.load_image(tmp_path / name).shape == (1, 4, 40, 60), name
        assert read_rgb8(tmp_path / name).shape == (40, 60, 3), name


@pytest.mark.parametrize("content", [b"", b"not an image"])
def test_unreadable_file_is_named(tmp_path, content):
    (tmp_path / "bad.png").write_bytes(content)
    with pytest.raises(ImageFileError, match="bad.png: cannot read as an image"):
        g.load_image(tmp_path / "bad.png")


def test_only_the_first_frame_of_an_animation_is_used_and_that_is_said(tmp_path, caplog):
    frames = [Image.new("RGB", (8, 6), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with caplog.at_level(logging.WARNING, logger="gendr_pix.imageio"):
        loaded = g.load_image(tmp_path / "anim.gif")
    assert "anim.gif: 2 frames (animation or pages); only the first is used" in caplog.text
    assert loaded[0, 0].mean() > 0.9 and loaded[0, 2].mean() < 0.1  # red, the first frame
    caplog.clear()
    frames[0].save(tmp_path / "still.gif")
    with caplog.at_level(logging.WARNING, logger="gendr_pix.imageio"):
        g.load_image(tmp_path / "still.gif")
    assert caplog.text == ""


WIDE = (np.random.default_rng(0).random((9, 13, 4)) * 65535).astype(np.uint16)


def _as_uint16(image: torch.Tensor) -> np.ndarray:
    return (image[0].permute(1, 2, 0).double().numpy() * 65535).round().astype(np.uint16)


@pytest.mark.parametrize("name, write, channels", [
    ("rgb.png", lambda p: png16(p, WIDE[..., :3]), 3),
    ("rgba.png", lambda p: png16(p, WIDE), 4),
    ("rgb.tif", lambda p: tiff16(p, WIDE[..., :3]), 3),
    ("rgba-motorola.tif", lambda p: tiff16(p, WIDE, big_endian=True), 4),
    ("rgb-deflate.tif", lambda p: tiff16(p, WIDE[..., :3], deflate=True), 3),
    ("rgba-deflate-motorola.tif", lambda p: tiff16(p, WIDE, deflate=True, big_endian=True), 4),
])
def test_16bit_colour_loads_with_all_16_bits(tmp_path, name, write, channels):
    path = write(tmp_path / name)
    assert np.array_equal(_as_uint16(g.load_image(path)), WIDE[..., :channels])
    assert g.read_bit_depth(path) == 16


def test_16bit_grey_loads_with_all_16_bits(tmp_path):
    path = png16(tmp_path / "grey.png", WIDE[..., :1])
    loaded = _as_uint16(g.load_image(path))
    assert loaded.shape == (9, 13, 3) and all(np.array_equal(loaded[..., c], WIDE[..., 0]) for c in range(3))
    assert g.read_bit_depth(path) == 16


def test_16bit_grey_with_alpha_is_read_as_8_bits_and_that_is_said(tmp_path, caplog):
    path = png16(tmp_path / "grey-alpha.png", WIDE[..., :2])
    with caplog.at_level(logging.WARNING, logger="gendr_pix"):
        assert g.load_image(path).shape == (1, 4, 9, 13)
    assert "grey-alpha.png: 16-bit LA samples read as 8 bits" in caplog.text


@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_png_is_written_exactly(tmp_path, channels):
    image = torch.from_numpy(WIDE[..., :channels] / 65535).permute(2, 0, 1)[None].float()
    profile = b"not checked by the writer, only carried"
    g.save_image(image, tmp_path / "out.png", bits=16, icc_profile=profile)
    assert (tmp_path / "out.png").read_bytes()[24] == 16
    assert np.array_equal(_as_uint16(g.load_image(tmp_path / "out.png")), WIDE[..., :channels])
    with Image.open(tmp_path / "out.png") as im:  # Pillow sees the high bytes, and the profile
        assert np.array_equal(np.asarray(im), (WIDE[..., :channels] >> 8).astype(np.uint8))
        assert im.info["icc_profile"] == profile


def test_8bit_files_load_and_save_as_before(tmp_path):
    pixels = (np.arange(9 * 13 * 3) % 256).astype(np.uint8).reshape(9, 13, 3)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    loaded = g.load_image(tmp_path / "in.png")
    assert torch.equal(loaded, torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1)[None])
    assert g.read_bit_depth(tmp_path / "in.png") == 8
    g.save_image(loaded, tmp_path / "out.png")
    assert (tmp_path / "out.png").read_bytes()[24] == 8
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), pixels)


@pytest.mark.parametrize("name", ["out.tif", "out.xyz", "out"])
def test_save_refuses_a_suffix_it_cannot_write(tmp_path, name):
    with pytest.raises(ValueError, match="image files are written as .png, .jpg, .jpeg, .webp"):
        g.save_image(torch.rand(1, 3, 4, 4), tmp_path / name)
    assert not (tmp_path / name).exists()
