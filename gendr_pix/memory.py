"""How much memory an inference call needs, measured by simulation rather than guessed.

`PeakTensorMemory` follows every tensor an operator returns and keeps the running sum of live
storages: the device-agnostic analogue of `torch.cuda.max_memory_allocated`. Run on the `meta`
device (no data, no compute), it gives the activation peak of a forward pass at any size in a
fraction of a second. `plan_tile` uses that to pick the largest tile that fits in free memory.

Attention is simulated as a fused kernel (flash / memory-efficient: output-sized memory), which is
what torch dispatches on CUDA and on the CPU; the meta device itself would materialise the score
matrix. Not seen: kernel workspaces (cuDNN, oneDNN) and allocator rounding; `SAFETY` covers them.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

log = logging.getLogger(__name__)

SAFETY = 1.25
"""Simulated activation peak x SAFETY + RESERVE must fit in free memory."""
RESERVE = 512 * 2**20


def _key(t: torch.Tensor) -> int:
    # The StorageImpl's address: unique among live storages, also on `meta` where data_ptr() is 0.
    return t.untyped_storage()._cdata


class PeakTensorMemory(TorchDispatchMode):
    """`with PeakTensorMemory(baseline=n) as m: fn()`, then `m.peak` = n + the largest sum of live
    storages created inside the block. Views and in-place results share their input's storage and
    are not counted again; tensors made before the block (weights, inputs) are not counted at all.
    device_type: count only storages on this kind of device ("cpu", "cuda", "meta"); None = all.
    """

    def __init__(self, baseline: int = 0, device_type: str | None = None) -> None:
        super().__init__()
        self.device_type = device_type
        self.current = self.peak = baseline
        self._live: dict[int, list[int]] = {}  # storage key -> [nbytes, live tensor objects]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None) -> Any:
        out = func(*args, **(kwargs or {}))
        inputs = {_key(t) for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self._track(t, inputs)
        return out

    def _track(self, t: torch.Tensor, inputs: set[int]) -> None:
        if self.device_type is not None and t.device.type != self.device_type:
            return
        key = _key(t)
        entry = self._live.get(key)
        if entry is None:
            if key in inputs:
                return  # a view or in-place result of a tensor made before tracking began
            entry = self._live[key] = [t.untyped_storage().nbytes(), 0]
            self.current += entry[0]
            self.peak = max(self.peak, self.current)
        entry[1] += 1
        weakref.finalize(t, self._release, key)

    def _release(self, key: int) -> None:
        entry = self._live.get(key)
        if entry is not None:
            entry[1] -= 1
            if entry[1] == 0:
                del self._live[key]
                self.current -= entry[0]


class _FusedAttentionOnMeta(TorchFunctionMode):
    """Make scaled_dot_product_attention allocate only its output, like the fused kernels do."""

    def __torch_function__(self, func, types, args=(), kwargs=None) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            q, v = args[0], args[2] if len(args) > 2 else kwargs["value"]
            # The fused kernels lay the output out like the query (often [B, N, H, D] under a
            # [B, H, N, D] view), so merging heads afterwards is free; empty_like keeps that layout.
            return torch.empty_like(q) if v.shape[-1] == q.shape[-1] else q.new_empty((*q.shape[:-1], v.shape[-1]))
        return func(*args, **kwargs)


def simulate_peak(fn: Callable[..., object], *meta_args: object) -> int:
    """Peak bytes of tensors created by `fn(*meta_args)`; pass meta-device modules and tensors."""
    with torch.inference_mode(), _FusedAttentionOnMeta(), PeakTensorMemory(device_type="meta") as tracker:
        fn(*meta_args)
    return tracker.peak


def module_bytes(*modules: torch.nn.Module) -> int:
    """Bytes of all parameters and buffers (shared tensors counted once)."""
    seen = {_key(t): t.untyped_storage().nbytes() for m in modules for t in [*m.parameters(), *m.buffers()]}
    return sum(seen.values())


def free_memory(device: torch.device) -> int | None:
    """Bytes this process can still allocate on `device`; None when unknown (then nothing is planned)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        # Blocks torch's caching allocator holds but does not use are free to us as well.
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type == "mps":
        return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
    if device.type == "cpu":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


def fits_in(need: int, budget: int) -> bool:
    """Whether a simulated peak of `need` bytes fits in `budget` free bytes, with our margins."""
    return need * SAFETY + RESERVE <= budget


def plan_tile(estimate: Callable[[int, int], int], height: int, width: int, align: int, min_tile: int,
              budget: int | None) -> int:
    """Largest square tile edge (a multiple of `align`, at least `min_tile`) whose estimated peak fits.

    estimate(h, w) -> activation bytes for one tile of h x w (memoise it: it is called ~log2(size)
    times). Returns max(height, width) rounded up to `align` when the whole image fits or `budget`
    (free bytes) is None.
    """
    whole = round_up(max(height, width), align)
    if budget is None:
        return whole

    def fits(tile: int) -> bool:
        return fits_in(estimate(min(tile, round_up(height, align)), min(tile, round_up(width, align))), budget)

    if fits(whole):
        return whole
    lo, hi = max(align, round_up(min_tile, align)) // align, whole // align  # search over tile // align
    if not fits(lo * align):
        log.warning("even %dpx tiles may not fit in %.1f GB free; trying anyway", lo * align, budget / 1e9)
        return lo * align
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid * align) else (lo, mid)
    return lo * align


def round_up(n: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is >= n (tile edges and sizes on the model's grid)."""
    return -(-n // multiple) * multiple
