import numpy as np
import pytest
import torch

from gendr_pix.training.data import DataConfig, PairDataset
from gendr_pix.training.deadleaves import dead_leaves, sample_radius
from gendr_pix.training.degrade import DegradeConfig

PALETTE = np.array([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.1, 0.2, 0.9], [0.5, 0.5, 0.5]], np.float32)


def test_radii_follow_the_power_law():
    r = sample_radius(np.random.default_rng(0).uniform(size=200_000), 4.0, 64.0, 3.0)
    assert r.min() >= 4.0 and r.max() <= 64.0
    # p(r) ~ r^-3: P(r > 8) = (8^-2 - 64^-2) / (4^-2 - 64^-2)
    expected = (8.0**-2 - 64.0**-2) / (4.0**-2 - 64.0**-2)
    assert abs((r > 8).mean() - expected) < 0.005


def test_a_seed_gives_one_image_of_flat_leaves_with_edges():
    a = dead_leaves(96, np.random.default_rng(1), PALETTE, texture_prob=0.0)
    b = dead_leaves(96, np.random.default_rng(1), PALETTE, texture_prob=0.0)
    c = dead_leaves(96, np.random.default_rng(2), PALETTE, texture_prob=0.0)
    assert a.shape == (3, 96, 96) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert 0 <= a.min() and a.max() <= 1
    # Mostly flat (small shading), with real edges: most neighbour differences are tiny, a few large.
    d = (a[:, :, 1:] - a[:, :, :-1]).abs().amax(0)
    assert (d < 0.02).float().mean() > 0.8 and (d > 0.2).float().mean() > 0.005
    # Every pixel takes a palette colour up to the shading.
    dist = (a.permute(1, 2, 0)[:, :, None, :] - torch.from_numpy(PALETTE)).abs().amax(-1).amin(-1)
    assert (dist < 0.2).float().mean() > 0.99


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="at least one colour"):
        dead_leaves(64, np.random.default_rng(0), np.zeros((0, 3)))
    with pytest.raises(ValueError, match=">= 8 px"):
        dead_leaves(4, np.random.default_rng(0), PALETTE)
    with pytest.raises(ValueError, match="synthetic_prob must be in"):
        DataConfig(synthetic_prob=1.5)


def test_synthetic_share_replaces_photo_crops(photo_folder):
    photos = PairDataset(DataConfig(folder=str(photo_folder), crop=64, seed=3), DegradeConfig(kind="bicubic"))
    mixed = PairDataset(DataConfig(folder=str(photo_folder), crop=64, seed=3, synthetic_prob=1.0),
                        DegradeConfig(kind="bicubic"))
    off = PairDataset(DataConfig(folder=str(photo_folder), crop=64, seed=3, synthetic_prob=0.0),
                      DegradeConfig(kind="bicubic"))
    assert torch.equal(off[4]["hq"], photos[4]["hq"])  # 0 draws nothing: earlier runs see their data
    s = mixed[4]
    assert s["hq"].shape == (3, 64, 64) and s["lq"].shape == (3, 16, 16)
    assert not torch.equal(s["hq"], photos[4]["hq"])
    assert torch.equal(mixed[4]["hq"], s["hq"])  # a function of the index, like photo samples
