"""The photo selection of `fetch-data` on a fake extracted package tree (no network, no apt)."""

import pytest
from PIL import Image

from gendr_pix.training import photos


def _img(path, size):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size).save(path)


def _tree(root, skip=()):
    for name in photos.PHOTOS:
        if name in skip:
            continue
        if name in photos.PLASMA_PHOTOS:
            base = root / "usr/share/wallpapers" / name / "contents/images"
            _img(base / "8x4.jpg", (8, 4))
            _img(base / "16x8.jpg", (16, 8))
        else:
            _img(root / "usr/share/backgrounds/mate/nature" / f"{name}.jpg", (8, 8))
    for name in photos.EXTRA_TRAIN:
        _img(root / "usr/share/backgrounds" / f"{name}.jpg", (8, 8))
    _img(root / "usr/share/backgrounds/umang_by_Abhishek_Mudgal.jpg", (8, 8))  # art: not selected


def test_sources_are_the_listed_photos_largest_file_first(tmp_path):
    _tree(tmp_path)
    found = photos.find_sources(tmp_path)
    assert set(found) == set(photos.PHOTOS) | set(photos.EXTRA_TRAIN)
    assert found["Path"].name == "16x8.jpg"


def test_a_missing_photo_is_named(tmp_path):
    _tree(tmp_path, skip=("Kite",))
    with pytest.raises(FileNotFoundError, match="Kite"):
        photos.find_sources(tmp_path)


def test_split_keeps_the_validation_names():
    train, val = photos.split_names(photos.PHOTOS)
    assert val == ["Blinds", "ColorfulCups", "EveningGlow", "FreshFlower", "GreenMeadow"]
    assert len(train) == 18 and not set(photos.EXTRA_TRAIN) & set(val)
