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
