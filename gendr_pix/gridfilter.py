"""Grid filter: remove the 8-periodic part of what the model added, in one cheap pass.

An x8 pixel-shuffle can leave a faint pattern that repeats every 8 pixels, locked to the grid. The
self-ensemble cancels it by running the model K times and averaging, which also averages away
detail. The grid filter estimates the pattern locally and subtracts it: the model's residual
(output minus its input, the resized image) is split into its 64 grid phases, each phase is averaged
over a neighbourhood about `window` pixels wide, and what differs between the phases there, the local
8-periodic pattern, is removed. In frequency terms it is close to a comb of narrow notches at the
grid frequencies (m/8, n/8 cycles per pixel, DC excluded), about 1/window wide. The input's own
content is kept (only the residual is filtered), and added detail that does not repeat every 8
pixels across the window passes.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .choices import GRID_FILTER_WINDOW as DEFAULT_WINDOW
from .config import SHUFFLE
from .errors import SettingError
from .guidance import Restorer


def check_window(window: int) -> None:
    """0 = off; else a multiple of 8 px from 8 to 1024."""
    if window and (window % SHUFFLE or not SHUFFLE <= window <= 1024):
        raise SettingError("{grid_filter} must be 0 (off) or a multiple of {shuffle} px in "
                           "[{shuffle}, 1024], got {value}", shuffle=SHUFFLE, value=window)


def grid_pattern(residual: Tensor, window: int = DEFAULT_WINDOW) -> Tensor:
    """The local 8-periodic part of [B, C, H, W] `residual` (same shape; zero mean over each 8x8 cell).

    Each grid phase is averaged over blocks of `window` x `window` pixels and interpolated bilinearly
    between block centres: a smooth local estimate in a few passes over the image (a sliding window
    of that width cost more than the model itself on a CPU). Any H, W: the image is completed to
    whole blocks, and the missing pixels count as absent (masked means), not as copies of the edge,
    which would plant a false pattern in the last cells.
    """
    check_window(window)
    if not window:
        raise ValueError("grid_pattern needs a window > 0")
    b, c, h, w = residual.shape
    pads = (0, -w % window, 0, -h % window)
    sums = _block_phase_sums(F.pad(residual, pads) if any(pads) else residual, window)
    counts = _block_phase_sums(F.pad(residual.new_ones(1, 1, h, w), pads), window)
    means = sums / counts.clamp_min(1)  # [B, C, blocks_h, 8, blocks_w, 8]
    seen = (counts > 0).to(residual.dtype)  # phases with pixels in the block (all, unless H or W < 8)
    cell_mean = (means * seen).sum((3, 5), keepdim=True) / seen.sum((3, 5), keepdim=True)
    blocks = ((means - cell_mean) * seen).permute(0, 1, 3, 5, 2, 4).flatten(1, 3)  # [B, C*64, bh, bw]
    cells = window // SHUFFLE
    size = (blocks.shape[-2] * cells, blocks.shape[-1] * cells)
    pattern = F.interpolate(blocks, size=size, mode="bilinear", align_corners=False)
    return F.pixel_shuffle(pattern, SHUFFLE)[..., :h, :w]


def _block_phase_sums(x: Tensor, window: int) -> Tensor:
    """[B, C, H, W] (multiples of `window`) -> per block and grid phase sums [B, C, H/window, 8, W/window, 8].
    A view and one reduction: no pixel-unshuffle copy of the whole image."""
    b, c, h, w = x.shape
    cells = window // SHUFFLE
    return x.reshape(b, c, h // window, cells, SHUFFLE, w // window, cells, SHUFFLE).sum((3, 6))


def grid_filtered(fn: Restorer, window: int = DEFAULT_WINDOW) -> Restorer:
    """Wrap `fn` ([-1, 1] image -> restored image) so its output loses the local 8-periodic part of
    fn(x) - x; `window` = 0 returns `fn` itself."""
    check_window(window)
    if not window:
        return fn

    def run(x: Tensor) -> Tensor:
        y = fn(x)
        return y - grid_pattern(y - x, window)

    return run
