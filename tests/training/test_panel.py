"""The visual panel: one row per crop and input setting, one 1:1 cell per column, labelled."""

import pytest
import torch
from PIL import Image

import gendr_pix
from gendr_pix.cli import main
from gendr_pix.training.panel import Crop, make_panel


@pytest.fixture()
def photos(tmp_path):
    gen = torch.Generator().manual_seed(0)
    img = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 16, generator=gen), size=(96, 128), mode="bicubic")
    arr = (img[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    Image.fromarray(arr).save(tmp_path / "pic.png")
    return tmp_path


def test_panel_has_a_cell_per_column_and_row(photos, tiny):
    crops = (Crop("pic", 8, 4, "a"), Crop("pic", 60, 40, "b"))
    image = make_panel(tiny, photos, default=gendr_pix.UpscaleOptions(),
                       recommended=gendr_pix.UpscaleOptions(ensemble=2), crops=crops, size=32, references=False)
    # 5 columns (input, bicubic, ours x2, ground truth) of 32 px + gaps beside the labels; 4 rows
    assert image.size == (92 + 5 * 34, 16 + 4 * 34)


def test_panel_refuses_a_crop_outside_the_photo(photos, tiny):
    with pytest.raises(ValueError, match="leaves the 128x96 photo"):
        make_panel(tiny, photos, default=gendr_pix.UpscaleOptions(), recommended=gendr_pix.UpscaleOptions(),
                   crops=(Crop("pic", 120, 0, "x"),), size=32, references=False)


def test_panel_cli_names_a_missing_photo(tmp_path, capsys):
    assert main(["panel", "--photos", str(tmp_path), "--out", str(tmp_path / "p.jpg"), "--no-references"]) == 2
    assert "no photo named 'astronaut'" in capsys.readouterr().err
