"""Blur kernels of the Real-ESRGAN degradation model (Wang et al. 2021), in numpy.

All kernels are odd-sized, normalised to sum 1, and drawn from a caller-owned `numpy.random.Generator`
so a sample's degradation is reproducible from its seed.
"""

from __future__ import annotations

import math

import numpy as np

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    return np.meshgrid(r, r, indexing="xy")


def _inv_cov(sig_x: float, sig_y: float, theta: float) -> np.ndarray:
    """Inverse covariance of a Gaussian with std sig_x, sig_y rotated by theta."""
    d = np.diag([sig_x**2, sig_y**2])
    u = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    return np.linalg.inv(u @ d @ u.T)


def _quad(size: int, inv: np.ndarray) -> np.ndarray:
    xx, yy = _grid(size)
    xy = np.stack([xx, yy], axis=-1)
    return np.einsum("...i,ij,...j->...", xy, inv, xy)


def gaussian_kernel(size: int, sig_x: float, sig_y: float, theta: float) -> np.ndarray:
    k = np.exp(-0.5 * _quad(size, _inv_cov(sig_x, sig_y, theta)))
    return k / k.sum()


def generalized_kernel(size: int, sig_x: float, sig_y: float, theta: float, beta: float) -> np.ndarray:
    """exp(-0.5 * q^beta): heavier (beta < 1) or lighter (beta > 1) tails than a Gaussian."""
    k = np.exp(-0.5 * np.power(_quad(size, _inv_cov(sig_x, sig_y, theta)), beta))
    return k / k.sum()


def plateau_kernel(size: int, sig_x: float, sig_y: float, theta: float, beta: float) -> np.ndarray:
    """1 / (1 + q^beta): a flat top with slow fall-off."""
    k = 1.0 / (np.power(_quad(size, _inv_cov(sig_x, sig_y, theta)), beta) + 1)
    return k / k.sum()


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """2-D circular low-pass (jinc) kernel with cutoff in radians/pixel; models ringing/overshoot."""
    from math import pi

    xx, yy = _grid(size)
    r = np.sqrt(xx**2 + yy**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = cutoff * _bessel_j1(cutoff * r) / (2 * pi * r)
    k[r == 0] = cutoff**2 / (4 * pi)
    return k / k.sum()


def _bessel_j1(x: np.ndarray) -> np.ndarray:
    """Bessel J1 by numerical integration of its integral form (no scipy): J1(x) = 1/pi int cos(t - x sin t)."""
    t = np.linspace(0.0, math.pi, 257)
    vals = np.cos(t[None, :] - x.reshape(-1, 1) * np.sin(t[None, :]))
    weights = np.full(t.shape, t[1] - t[0])
    weights[[0, -1]] /= 2  # trapezoid rule
    return (vals @ weights).reshape(x.shape) / math.pi


def random_kernel(rng: np.random.Generator, size: int, sigma: tuple[float, float],
                  probs: tuple[float, ...], beta_g: tuple[float, float], beta_p: tuple[float, float]) -> np.ndarray:
    """A random blur kernel of one of KERNEL_TYPES chosen with `probs`."""
    kind = KERNEL_TYPES[rng.choice(len(KERNEL_TYPES), p=np.asarray(probs) / sum(probs))]
    sx = rng.uniform(*sigma)
    iso = kind.endswith("iso") and not kind.endswith("aniso")
    sy = sx if iso else rng.uniform(*sigma)
    theta = 0.0 if iso else rng.uniform(-math.pi, math.pi)
    if kind.startswith("generalized"):
        return generalized_kernel(size, sx, sy, theta, rng.uniform(*beta_g))
    if kind.startswith("plateau"):
        return plateau_kernel(size, sx, sy, theta, rng.uniform(*beta_p))
    return gaussian_kernel(size, sx, sy, theta)


def random_sinc(rng: np.random.Generator, size: int) -> np.ndarray:
    """Real-ESRGAN's sinc draw: small kernels get a higher minimum cutoff."""
    lo = math.pi / 3 if size < 13 else math.pi / 5
    return sinc_kernel(size, rng.uniform(lo, math.pi))
