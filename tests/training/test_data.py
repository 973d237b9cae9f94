import pytest
import torch

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
