"""Training pairs from any folder of images: random HQ crops and their degraded LQ versions; optionally
mixed with aligned crops of a folder of ready-made pairs (camera LR/HR pairs, or a teacher's outputs).

Sample i of a run is a pure function of (seed, i): the crop, the flips and the degradation all come
from `numpy.random.default_rng([seed, i])`. A resumed run continues at the next sample index, so it
sees exactly the data an uninterrupted run would have seen, whatever the number of workers or ranks.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from gendr_pix import to_grey
from gendr_pix.imageio import IMAGE_SUFFIXES, upright_8bit

from .deadleaves import dead_leaves
from .degrade import DegradeConfig, degrade

log = logging.getLogger(__name__)

SYNTHETIC_COLORS = 64
"""Palette size of a dead-leaves sample: random pixels of one photo."""


def list_images(folder: str | os.PathLike | tuple[str | os.PathLike, ...]) -> list[Path]:
    """Image files in `folder` (searched recursively), sorted; a tuple of folders is listed in order.
    Raises if a folder is missing or holds no images."""
    if isinstance(folder, (tuple, list)):
        return [p for f in folder for p in list_images(f)]
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder of images")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise FileNotFoundError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return paths


def desaturate(img: Tensor, keep: float) -> Tensor:
    """[3, H, W] -> luma + keep * (img - luma): keep = 0 is grey (R = G = B), 1 the image itself."""
    luma = to_grey(img[None])[0]
    return (luma + keep * (img - luma)).clamp(0, 1)


def read_rgb8(path: str | os.PathLike) -> np.ndarray:
    """Image file -> uint8 [H, W, 3] (upright, alpha dropped, greyscale expanded; `upright_8bit`)."""
    with Image.open(path) as im:
        return np.asarray(upright_8bit(im, keep_alpha=False), dtype=np.uint8)


def to_chw(arr: np.ndarray) -> Tensor:
    """uint8 [H, W, 3] (a view is fine) -> float32 [3, H, W] in [0, 1]."""
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255


def load_rgb(path: str | os.PathLike) -> Tensor:
    """Image file -> float32 [3, H, W] in [0, 1] (alpha dropped, greyscale expanded)."""
    return to_chw(read_rgb8(path))


def warn_small_images(paths: list[Path], crop: int) -> None:
    """Say which images are smaller than the crop: their crops are upscaled to it, soft targets that
    teach the model softness. Reads only the file headers."""
    small = []
    for path in paths:
        with Image.open(path) as im:
            if min(im.size) < crop:
                small.append(f"{path.name} ({im.size[0]}x{im.size[1]})")
    if small:
        log.warning("%d of %d training images are smaller than the %d px crop and get upscaled (soft targets): %s",
                    len(small), len(paths), crop, ", ".join(small[:5]) + (", ..." if len(small) > 5 else ""))


def flip_rotate(img: Tensor, flip: bool, turns: int) -> Tensor:
    """The augmentation of every crop: optional horizontal flip, then `turns` quarter turns."""
    return torch.rot90(img.flip(-1) if flip else img, turns, dims=(-2, -1))


class DecodedCache:
    """Decoded images of one DataLoader worker, least recently used dropped first beyond `max_bytes`.

    Why bounded: a few wallpapers fit many times over, but a DF2K-sized set (thousands of 2K photos,
    about 30 GB decoded) would otherwise fill the RAM once per worker. Samples never depend on it.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.bytes = max_bytes, 0
        self._items: OrderedDict[object, tuple[np.ndarray, ...]] = OrderedDict()

    def get(self, key: object, load: Callable[[], tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = load()
        size = sum(a.nbytes for a in value)
        if size <= self.max_bytes:
            self._items[key] = value
            self.bytes += size
            while self.bytes > self.max_bytes:
                self.bytes -= sum(a.nbytes for a in self._items.popitem(last=False)[1])
        return value

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    folder: str | tuple[str, ...] = "data/photos/train"
    """Any folder of images (searched recursively), or a list of folders."""
    crop: int = 256
    """HQ crop edge in pixels; must be a multiple of the scale and of the model's pixel multiple."""
    min_scale: float = 0.5
    """Each source is also used downscaled by a random factor in [min_scale, 1] (more detail per pixel)."""
    bicubic_prob: float = 0.2
    """Share of samples degraded by plain bicubic instead of the second-order pipeline."""
    synthetic_prob: float = 0.0
    """Share of HQ crops that are dead-leaves images (`deadleaves.py`) instead of photo crops, coloured
    with random pixels of a random photo: content-free samples against memorising a small photo set."""
    desaturate_prob: float = 0.0
    """Share of HQ crops whose colour is taken out before degradation: fully grey for half of them, the
    chroma scaled by a uniform factor in [0, 1) for the rest. Without it a model trained on colourful
    photos never sees a grey or washed-out image, and on one it invents colour and texture."""
    pairs: str = ""
    """A folder of ready-made pairs: `lq/` and `hq/` hold images with the same file stems, each hq image
    exactly `scale` times its lq one (camera LR/HR pairs, or a teacher's outputs on degraded crops as
    `scripts/teacher_pairs.py` writes them). Used for a `pairs_prob` share of the samples."""
    pairs_prob: float = 0.0
    """Share of samples that are aligned random crops of `pairs` instead of synthetic degradations."""
    cache_mb: float = 1024.0
    """Decoded images (photos and pairs) kept in memory per DataLoader worker, least recently used
    dropped first; 0 decodes every sample from disk. Speed only: samples are the same either way."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("bicubic_prob", "synthetic_prob", "desaturate_prob", "pairs_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"data.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.cache_mb < 0:
            raise ValueError(f"data.cache_mb must be >= 0, got {self.cache_mb}")
        if not 0.0 < self.min_scale <= 1.0:
            raise ValueError(f"data.min_scale must be in (0, 1], got {self.min_scale}")
        if self.pairs_prob > 0 and not self.pairs:
            raise ValueError(f"data.pairs_prob is {self.pairs_prob} but data.pairs (the folder) is not set")


def list_pairs(folder: str | os.PathLike) -> list[tuple[Path, Path]]:
    """(lq, hq) paths of a pair folder, matched by file stem; raises naming what is missing or unmatched."""
    folder = Path(folder)
    lq, hq = ({p.stem: p for p in list_images(folder / sub)} for sub in ("lq", "hq"))
    unmatched = sorted(set(lq) ^ set(hq))
    if unmatched:
        raise ValueError(f"{folder}: {len(unmatched)} images without a partner in lq/ or hq/, e.g. {unmatched[0]!r}")
    return [(lq[k], hq[k]) for k in sorted(lq)]


class PairDataset(Dataset):
    """Index i -> {"hq": [3, crop, crop], "lq": [3, crop/s, crop/s], "index": i}, floats in [0, 1]."""

    def __init__(self, cfg: DataConfig, degrade_cfg: DegradeConfig, length: int = 10**9) -> None:
        self.cfg, self.degrade_cfg, self.length = cfg, degrade_cfg, length
        self.paths = list_images(cfg.folder)
        if cfg.crop % degrade_cfg.scale:
            raise ValueError(f"crop {cfg.crop} is not a multiple of scale {degrade_cfg.scale}")
        warn_small_images(self.paths, cfg.crop)
        self._bicubic = DegradeConfig(kind="bicubic", scale=degrade_cfg.scale)
        self.pairs = list_pairs(cfg.pairs) if cfg.pairs_prob > 0 else []
        self._cache = DecodedCache(int(cfg.cache_mb * 2**20))  # per worker: decoded uint8 HWC images

    def __len__(self) -> int:
        return self.length

    def _image(self, k: int) -> np.ndarray:
        return self._cache.get(("photo", k), lambda: (read_rgb8(self.paths[k]),))[0]

    def __getitem__(self, i: int) -> dict[str, Tensor | int]:
        rng = np.random.default_rng([self.cfg.seed, int(i)])
        if self.pairs and rng.uniform() < self.cfg.pairs_prob:  # no draw when off: old runs keep their data
            hq, lq = self._pair_crop(rng)
            return {"hq": hq, "lq": lq, "index": int(i)}
        synthetic = self.cfg.synthetic_prob > 0 and rng.uniform() < self.cfg.synthetic_prob  # no draw when off
        hq = self._synthetic(rng) if synthetic else self._crop(rng)
        if self.cfg.desaturate_prob > 0 and rng.uniform() < self.cfg.desaturate_prob:  # no draw when off
            hq = desaturate(hq, 0.0 if rng.uniform() < 0.5 else float(rng.uniform()))
        cfg = self._bicubic if rng.uniform() < self.cfg.bicubic_prob else self.degrade_cfg
        lq = degrade(hq, cfg, rng)
        return {"hq": hq, "lq": lq, "index": int(i)}

    def _crop(self, rng: np.random.Generator) -> Tensor:
        c = self.cfg.crop
        img = self._image(int(rng.integers(len(self.paths))))
        h, w = img.shape[:2]
        scale = rng.uniform(self.cfg.min_scale, 1.0)
        src = min(h, w, int(round(c / scale)))  # source window, resized to c x c
        y, x = int(rng.integers(h - src + 1)), int(rng.integers(w - src + 1))
        patch = to_chw(img[y:y + src, x:x + src])
        if src != c:
            patch = torch.nn.functional.interpolate(patch[None], size=(c, c), mode="bicubic", antialias=True)[0]
        flip = rng.uniform() < 0.5
        patch = flip_rotate(patch, flip, int(rng.integers(4)))
        return patch.clamp(0, 1).contiguous()

    def _pair(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self._cache.get(("pair", k), lambda: self._read_pair(k))

    def _read_pair(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        lq_path, hq_path = self.pairs[k]
        lq, hq = read_rgb8(lq_path), read_rgb8(hq_path)
        s, c = self.degrade_cfg.scale, self.cfg.crop
        if hq.shape[:2] != (lq.shape[0] * s, lq.shape[1] * s):
            raise ValueError(f"{hq_path}: {hq.shape[1]}x{hq.shape[0]} is not {s}x its lq image "
                             f"{lq_path} ({lq.shape[1]}x{lq.shape[0]})")
        if min(hq.shape[:2]) < c:
            raise ValueError(f"{hq_path}: {hq.shape[1]}x{hq.shape[0]} is smaller than data.crop {c}")
        return lq, hq

    def _pair_crop(self, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        """Aligned random crop of a ready-made pair (on the lq grid), with the same flip and rotation."""
        lq, hq = self._pair(int(rng.integers(len(self.pairs))))
        s, c = self.degrade_cfg.scale, self.cfg.crop // self.degrade_cfg.scale
        y, x = int(rng.integers(lq.shape[0] - c + 1)), int(rng.integers(lq.shape[1] - c + 1))
        flip, turns = rng.uniform() < 0.5, int(rng.integers(4))
        hq_t, lq_t = (flip_rotate(to_chw(img[y * f:(y + c) * f, x * f:(x + c) * f]), flip, turns).contiguous()
                      for img, f in ((hq, s), (lq, 1)))
        return hq_t, lq_t

    def _synthetic(self, rng: np.random.Generator) -> Tensor:
        img = self._image(int(rng.integers(len(self.paths))))
        h, w = img.shape[:2]
        colors = img[rng.integers(h, size=SYNTHETIC_COLORS), rng.integers(w, size=SYNTHETIC_COLORS)] / 255
        return dead_leaves(self.cfg.crop, rng, colors)


class ContinuingSampler(Sampler[int]):
    """Sample indices start, start+1, ... for one rank of `world` (round-robin), forever."""

    def __init__(self, start: int = 0, rank: int = 0, world: int = 1) -> None:
        self.start, self.rank, self.world = start, rank, world

    def __iter__(self):
        i = self.start + self.rank
        while True:
            yield i
            i += self.world

    def __len__(self) -> int:  # pragma: no cover - infinite
        return 2**62
