import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gendr_pix.training.degrade import DegradeConfig, degrade, filter2d, jpeg
from gendr_pix.training.kernels import KERNEL_TYPES, random_kernel, sinc_kernel


def _img(seed=0, size=64):
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(1, 3, size // 4, size // 4, generator=g), size=(size, size), mode="bilinear")[0]


def test_second_order_is_reproducible_per_seed_and_varies_across_seeds():
    hq, cfg = _img(), DegradeConfig()
    a = degrade(hq, cfg, np.random.default_rng(7))
    b = degrade(hq, cfg, np.random.default_rng(7))
    c = degrade(hq, cfg, np.random.default_rng(8))
    assert a.shape == (3, 16, 16)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert 0 <= a.min() and a.max() <= 1


def test_bicubic_is_deterministic_and_close_to_the_downscaled_image():
    hq = _img()
    lq = degrade(hq, DegradeConfig(kind="bicubic"), np.random.default_rng(0))
    ref = F.interpolate(hq[None], size=(16, 16), mode="bicubic", antialias=True)[0]
    assert lq.shape == (3, 16, 16)
    assert (lq - ref).abs().max() <= 1 / 255 + 1e-6  # only 8-bit rounding


@pytest.mark.parametrize("seed", range(6))
def test_random_kernels_are_normalised_and_cover_all_types(seed):
    rng = np.random.default_rng(seed)
    k = random_kernel(rng, 21, (0.2, 3.0), tuple(1.0 if i == seed else 0.0 for i in range(6)), (0.5, 4), (1, 2))
    assert k.shape == (21, 21) and abs(k.sum() - 1) < 1e-9 and np.isfinite(k).all()
    assert len(KERNEL_TYPES) == 6
    # point symmetric, which filter2d relies on
    assert np.allclose(k, k[::-1, ::-1])


def test_sinc_kernel_rings():
    k = sinc_kernel(21, np.pi / 4)
    assert abs(k.sum() - 1) < 1e-9
    assert k.min() < 0  # negative lobes: the ringing/overshoot Real-ESRGAN models with it


def test_fft_filter_matches_conv2d():
    x = torch.rand(3, 40, 52)
    k = random_kernel(np.random.default_rng(1), 9, (0.5, 2), (0, 1, 0, 0, 0, 0), (1, 2), (1, 2))
    ref = F.conv2d(F.pad(x[None], (4, 4, 4, 4), mode="reflect"),
                   torch.from_numpy(k).float()[None, None].expand(3, 1, 9, 9), groups=3)[0]
    assert torch.allclose(filter2d(x, k), ref, atol=1e-5)


def test_jpeg_lowers_quality_monotonically():
    x = _img(size=64)
    x = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    err = [(jpeg(x, q) - x).abs().mean().item() for q in (20, 60, 95)]
    assert err[0] > err[1] > err[2]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="expected one RGB image"):
        degrade(torch.rand(1, 3, 8, 8), DegradeConfig(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="degradation kind"):
        DegradeConfig(kind="nope")


def test_poisson_noise_has_poisson_statistics_and_takes_one_draw_per_pixel_whatever_the_image():
    from dataclasses import replace

    from gendr_pix.training.degrade import OrderConfig, add_noise, poisson_counts

    rng = np.random.default_rng(0)
    for level in (0, 3, 100, 255):
        counts = poisson_counts(np.full(100_000, level), rng.uniform(size=100_000))
        lam = level * 256 / 255
        assert abs(counts.mean() - lam) < 0.02 * lam + 0.01 and abs(counts.var() - lam) < 0.05 * lam + 0.01
    # One uniform per pixel, each pixel on its own: changing one pixel changes only its count.
    levels, u = rng.integers(0, 256, size=(3, 16, 16)), rng.uniform(size=(3, 16, 16))
    other = levels.copy()
    other[0, 5, 5] = (other[0, 5, 5] + 128) % 256
    changed = poisson_counts(levels, u) != poisson_counts(other, u)
    assert changed.sum() <= 1 and not changed[1:].any()
    # The stream after the noise does not depend on the image (numpy's Poisson sampler's draws do),
    # so a last-bit difference on another CPU cannot change the rest of the sample.
    cfg = replace(OrderConfig(), gaussian_prob=0.0)
    after = []
    for img in (_img(1), _img(2) * 0.3):
        rng = np.random.default_rng(5)
        add_noise(img, cfg, rng)
        after.append(rng.uniform())
    assert after[0] == after[1]
