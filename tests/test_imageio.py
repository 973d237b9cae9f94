"""Image files as users have them: phone photos turned by EXIF, 16-bit greyscale scans, palettes with
transparency. Each must load as it is seen in a viewer, for upscaling and as training data alike."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
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
