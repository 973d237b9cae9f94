"""A one-line progress bar for the trainer (stderr, no dependency), and the JSONL log writer."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


class ProgressBar:
    def __init__(self, total: int, start: int = 0, enabled: bool = True, stream=sys.stderr) -> None:
        self.total, self.start, self.enabled, self.stream = total, start, enabled, stream
        self.t0 = time.monotonic()

    def update(self, step: int, logs: dict[str, float]) -> None:
        if not self.enabled:
            return
        done = step - self.start
        rate = done / max(time.monotonic() - self.t0, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else float("inf")
        width = 24
        filled = int(width * step / self.total)
        text = " ".join(f"{k}={v:.4g}" for k, v in logs.items() if k in ("loss", "l1", "lpips", "g_adv", "d"))
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {step}/{self.total} "
                          f"{rate:.2f} it/s eta {eta / 60:.1f} min {text}   ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")


class JsonlLog:
    """Appends one JSON object per line; safe to reopen on resume."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
