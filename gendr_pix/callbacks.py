"""Progress and stop callbacks shared by the inference loops."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

ProgressFn = Callable[[int, int, Tensor | None], None]
"""progress(done, total, preview): called after each tile/chunk; preview is the first image of the
finished piece as [1, 3, h, w] in [0, 1] (or None). `total` can grow when a tile size is halved after out-of-memory."""

StopFn = Callable[[], bool | None]
"""should_stop(): checked before every tile and chunk. Return True to stop (raises `Interrupted`), or
raise your own exception (ComfyUI's interrupt passes through untouched)."""


class Interrupted(Exception):
    """The stop callback asked to stop; nothing partial is returned."""


def check_stop(should_stop: StopFn | None) -> None:
    if should_stop is not None and should_stop():
        raise Interrupted("stopped by the caller")
