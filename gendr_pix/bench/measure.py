"""Timing, memory and machine facts for the benchmark.

Latency is the median of warm runs (after `warmup` untimed runs), synchronising CUDA around each.
Peak memory: on CUDA `torch.cuda.max_memory_allocated` over one run, weights included; on any device
also the peak of live tensor storages (`PeakTensorMemory`, weights included), and on Linux the
process's peak resident set (VmHWM) above what it held before the models were built. The last is only
meaningful in a fresh process per configuration, which is how the bench runs on the CPU by default.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..memory import PeakTensorMemory


@dataclass(frozen=True, kw_only=True)
class Timing:
    median_s: float
    runs_s: tuple[float, ...]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall time of one call, CUDA synchronised on both sides; the output is dropped at once."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def time_runs(fn: Callable[[], object], device: torch.device, *, warmup: int, repeats: int) -> Timing:
    """Median wall time of `repeats` (>= 1) calls after `warmup` (>= 0) untimed calls."""
    for _ in range(warmup):
        timed(fn, device)
    runs = tuple(timed(fn, device) for _ in range(max(1, repeats)))
    return Timing(median_s=statistics.median(runs), runs_s=runs)


def tensor_peak(fn: Callable[[], object], baseline: int, device: torch.device) -> int:
    """Peak bytes of live tensors on `device` during one call of `fn`, plus `baseline` (weights, inputs)."""
    with PeakTensorMemory(baseline=baseline, device_type=device.type) as tracker:
        fn()
    return tracker.peak


def rss_bytes(field: str = "VmRSS") -> int | None:
    """A memory field of /proc/self/status in bytes (VmRSS now, VmHWM peak); None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def matmul_peak_flops(device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """Achieved FLOP/s of a large square matmul: the practical ceiling the pipelines are compared to."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict[str, object]:
    """What measured it: device name, core count, torch build, and the git commit of this checkout."""
    info: dict[str, object] = {
        "device": str(device),
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "commit": git_commit(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        info["memory_total_bytes"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    return info


def git_commit() -> str:
    """Short hash of the checkout this package runs from, '+dirty' if it has uncommitted changes."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")
