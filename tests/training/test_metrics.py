import math

import torch

from gendr_pix.training.metrics import psnr_y, rgb_to_y, ssim_y


def test_psnr_matches_its_definition():
    x = torch.full((1, 3, 32, 32), 100 / 255, dtype=torch.float64)
    y = x.clone()
    y[..., ::2, :] = 102 / 255  # Y differs by 2 levels * (65.481+128.553+24.966)/255 on half the rows
    dy = 2 * (65.481 + 128.553 + 24.966) / 255
    expected = 10 * math.log10(255**2 / (dy**2 / 2))
    assert abs(psnr_y(y, x, crop=4).item() - expected) < 0.05


def test_ssim_is_one_for_identical_and_lower_for_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(2, 3, 12, 12, generator=g), size=(48, 48), mode="bilinear")
    noise = torch.randn(x.shape, generator=g)
    assert torch.allclose(ssim_y(x, x), torch.ones(2), atol=1e-6)
    low, high = (ssim_y(x, (x + s * noise).clamp(0, 1)) for s in (0.02, 0.1))
    assert (high < low).all() and (low < 1).all() and (high < 0.8).all()


def test_y_range():
    assert torch.allclose(rgb_to_y(torch.zeros(1, 3, 1, 1)), torch.tensor(16.0))
    assert torch.allclose(rgb_to_y(torch.ones(1, 3, 1, 1)), torch.tensor(235.0))
