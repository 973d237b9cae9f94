import logging

import numpy as np
import pytest
import torch
from PIL import Image

from gendr_pix.training.data import ContinuingSampler, DataConfig, PairDataset, list_images
from gendr_pix.training.degrade import DegradeConfig


def test_pairs_are_a_function_of_the_index(photo_folder):
    ds = PairDataset(DataConfig(folder=str(photo_folder), crop=64, seed=3), DegradeConfig())
    a, b, c = ds[5], ds[5], ds[6]
    assert a["hq"].shape == (3, 64, 64) and a["lq"].shape == (3, 16, 16)
    assert torch.equal(a["hq"], b["hq"]) and torch.equal(a["lq"], b["lq"])
    assert not torch.equal(a["hq"], c["hq"])
    fresh = PairDataset(DataConfig(folder=str(photo_folder), crop=64, seed=3), DegradeConfig())
    assert torch.equal(fresh[5]["lq"], a["lq"])  # no hidden state: a new worker sees the same sample


def test_sampler_splits_ranks_and_resumes():
    it = iter(ContinuingSampler(start=10, rank=1, world=2))
    assert [next(it) for _ in range(3)] == [11, 13, 15]


def test_empty_or_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no images"):
        list_images(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        list_images(tmp_path / "nope")


def test_several_folders_are_one_dataset(photo_folder, tmp_path):
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "q.png").write_bytes((photo_folder / "p0.png").read_bytes())
    both = list_images((str(photo_folder), str(tmp_path / "more")))
    assert [p.name for p in both] == ["p0.png", "p1.png", "p2.png", "q.png"]
    with pytest.raises(FileNotFoundError, match="nope: not a folder"):
        list_images((str(photo_folder), str(tmp_path / "nope")))


def test_desaturated_share_is_grey_or_washed_out(photo_folder):
    from gendr_pix.training.data import desaturate

    img = torch.rand(3, 8, 8)
    grey = desaturate(img, 0.0)
    assert torch.allclose(grey[0], grey[1]) and torch.allclose(grey[1], grey[2])
    assert torch.allclose(desaturate(img, 1.0), img)
    base = DataConfig(folder=str(photo_folder), crop=64, seed=3)
    plain = PairDataset(base, DegradeConfig(kind="bicubic"))
    off = PairDataset(DataConfig(folder=str(photo_folder), crop=64, seed=3, desaturate_prob=0.0),
                      DegradeConfig(kind="bicubic"))
    assert torch.equal(off[2]["hq"], plain[2]["hq"])  # 0 draws nothing: earlier runs keep their data
    every = PairDataset(DataConfig(folder=str(photo_folder), crop=64, seed=3, desaturate_prob=1.0),
                        DegradeConfig(kind="bicubic"))
    chroma = [float((s["hq"] - s["hq"].mean(0)).abs().mean()) for s in (every[i] for i in range(12))]
    colour = [float((s["hq"] - s["hq"].mean(0)).abs().mean()) for s in (plain[i] for i in range(12))]
    assert min(chroma) < 1e-6  # some fully grey
    assert all(a <= b + 1e-6 for a, b in zip(chroma, colour)) and sum(chroma) < 0.8 * sum(colour)
    with pytest.raises(ValueError, match="desaturate_prob must be in"):
        DataConfig(desaturate_prob=-0.1)


def _pair_folder(root, rng, sizes=((40, 48), (36, 52))):
    """lq/ and hq/ where each lq image is the exact 4x4 box average of its (random-texture) hq image."""
    for sub in ("lq", "hq"):
        (root / sub).mkdir(parents=True)
    for k, (h, w) in enumerate(sizes):
        hq = rng.integers(0, 256, (h * 4, w * 4, 3)).astype(np.float64)
        lq = hq.reshape(h, 4, w, 4, 3).mean((1, 3))
        Image.fromarray(hq.astype(np.uint8)).save(root / "hq" / f"{k}.png")
        Image.fromarray(lq.round().astype(np.uint8)).save(root / "lq" / f"{k}.png")
    return root


def test_ready_made_pairs_are_cropped_aligned(photo_folder, tmp_path):
    pairs = _pair_folder(tmp_path / "pairs", np.random.default_rng(0))
    ds = PairDataset(DataConfig(folder=str(photo_folder), crop=64, seed=3, pairs=str(pairs), pairs_prob=1.0),
                     DegradeConfig())
    for i in range(8):  # every flip/rotation combination shows up; misalignment by one lq pixel fails
        s = ds[i]
        assert s["hq"].shape == (3, 64, 64) and s["lq"].shape == (3, 16, 16)
        assert torch.allclose(torch.nn.functional.avg_pool2d(s["hq"][None], 4)[0], s["lq"], atol=0.6 / 255)
    half = PairDataset(DataConfig(folder=str(photo_folder), crop=64, seed=3, pairs=str(pairs), pairs_prob=0.5),
                       DegradeConfig(kind="bicubic"))
    from_pairs = [torch.allclose(torch.nn.functional.avg_pool2d(half[i]["hq"][None], 4)[0], half[i]["lq"],
                                 atol=0.6 / 255) for i in range(40)]
    assert 8 < sum(from_pairs) < 32


def test_bad_pair_folders_are_named(photo_folder, tmp_path):
    from gendr_pix.training.data import list_pairs

    pairs = _pair_folder(tmp_path / "pairs", np.random.default_rng(1))
    (pairs / "hq" / "1.png").rename(pairs / "hq" / "odd.png")
    with pytest.raises(ValueError, match="without a partner.*'1'"):
        list_pairs(pairs)
    wrong = _pair_folder(tmp_path / "wrong", np.random.default_rng(2), sizes=((40, 48),))
    Image.new("RGB", (100, 160)).save(wrong / "hq" / "0.png")
    ds = PairDataset(DataConfig(folder=str(photo_folder), crop=64, pairs=str(wrong), pairs_prob=1.0), DegradeConfig())
    with pytest.raises(ValueError, match=r"0\.png: 100x160 is not 4x its lq image"):
        ds[0]
    with pytest.raises(ValueError, match="data.pairs .* is not set"):
        DataConfig(pairs_prob=0.3)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        PairDataset(DataConfig(folder=str(photo_folder), pairs=str(tmp_path / "nope"), pairs_prob=0.2), DegradeConfig())


def test_decoded_cache_is_bounded_and_does_not_change_samples(photo_folder, tmp_path, monkeypatch):
    from gendr_pix.training import data

    pairs = _pair_folder(tmp_path / "pairs", np.random.default_rng(4))
    kw = dict(folder=str(photo_folder), crop=64, seed=3, pairs=str(pairs), pairs_prob=0.5)
    unbounded = PairDataset(DataConfig(**kw), DegradeConfig(kind="bicubic"))
    want = [unbounded[i] for i in range(16)]
    reads = []
    real_read = data.read_rgb8
    monkeypatch.setattr(data, "read_rgb8", lambda p: reads.append(p) or real_read(p))
    one_photo = max(real_read(p).nbytes for p in list_images(photo_folder))
    for cache_mb in (0.0, one_photo / 2**20):  # nothing cached; room for about one decoded image
        reads.clear()
        ds = PairDataset(DataConfig(**kw, cache_mb=cache_mb), DegradeConfig(kind="bicubic"))
        for i, w in enumerate(want):
            s = ds[i]
            assert torch.equal(s["hq"], w["hq"]) and torch.equal(s["lq"], w["lq"])
            assert ds._cache.bytes <= cache_mb * 2**20
        assert len(ds._cache) <= 2 and len(reads) > len(list_images(photo_folder)) + 2
    reads.clear()
    warm = PairDataset(DataConfig(**kw), DegradeConfig(kind="bicubic"))
    for i in range(16):
        warm[i]
    assert len(reads) == len(set(reads))  # the default keeps this small set: each file decoded once
    with pytest.raises(ValueError, match="cache_mb must be >= 0"):
        DataConfig(cache_mb=-1)


def test_images_smaller_than_the_crop_are_named(photo_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="gendr_pix.training.data"):
        PairDataset(DataConfig(folder=str(photo_folder), crop=176), DegradeConfig(kind="bicubic", scale=4))
    assert "1 of 3 training images are smaller than the 176 px crop" in caplog.text
    assert "p0.png (192x160)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gendr_pix.training.data"):
        PairDataset(DataConfig(folder=str(photo_folder), crop=160), DegradeConfig(kind="bicubic", scale=4))
    assert "smaller than" not in caplog.text
