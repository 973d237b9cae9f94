"""Progress and stop callbacks shared by the inference loops, down to the blocks of one model pass.

A whole image is often one model pass (minutes on a CPU at 4K), so progress and stop requests reach
inside it: while `upscale()` runs, a `Steps` object is active in a context variable, and the UNet calls
`block_done()` after each block and `stop_point()` inside long ones. Nothing is threaded through the
restorer wrappers (guidance, ensemble, tiles), and outside `upscale()` both calls do nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import Tensor

ProgressFn = Callable[[int, int, Tensor | None], None]
"""progress(done, total, preview), from `upscale()`: done/total count steps, one per UNet block of
every model pass (pieces x ensemble shifts x guidance passes x blocks), so the bar moves inside one
pass. preview is None inside a pass; after each tile/chunk it is the first image of the finished piece
as [1, 3, h, w] in [0, 1]. `done` never decreases; `total` can grow when a tile is halved after
out-of-memory (the pass cut short counts as done)."""

StopFn = Callable[[], bool | None]
"""should_stop(): checked before every tile and chunk and between the blocks of each model pass. Return
True to stop (raises `Interrupted`), or raise your own exception (ComfyUI's interrupt passes through
untouched)."""


class Interrupted(Exception):
    """The stop callback asked to stop; nothing partial is returned."""


def check_stop(should_stop: StopFn | None) -> None:
    if should_stop is not None and should_stop():
        raise Interrupted("stopped by the caller")


class Steps:
    """The step count of one `upscale()` call: relays progress and stop requests from inside passes.

    per_piece: steps of one tile (or whole image) of a chunk: passes per piece x `UNet.steps_per_pass`.
    A finished piece brings the count to its end even when its passes reported fewer steps (a
    compiled UNet reports none), and no piece counts more than its share.
    """

    def __init__(self, progress: ProgressFn | None, should_stop: StopFn | None, per_piece: int, total: int) -> None:
        self.progress, self.should_stop = progress, should_stop
        self.per_piece, self.total = per_piece, total
        self.done = self._base = self._pieces = 0

    def advance(self) -> None:
        """One block finished: stop if asked, else report it."""
        check_stop(self.should_stop)
        self.done = min(self.done + 1, self._piece_end(self._pieces + 1))
        if self.progress is not None:
            self.progress(self.done, self.total, None)

    def piece_done(self, preview: Tensor | None) -> None:
        """A tile or chunk finished: report its end, with its image."""
        self._pieces += 1
        self.done = max(self.done, self._piece_end(self._pieces))
        if self.progress is not None:
            self.progress(self.done, self.total, preview)

    def replan(self, remaining: int) -> None:
        """`remaining` steps are left from here (after out-of-memory, with smaller tiles): what ran
        stays counted, so `done` never decreases, and `total` never shrinks."""
        self._base, self._pieces = self.done, 0
        self.total = max(self.total, self.done + remaining)

    def _piece_end(self, pieces: int) -> int:
        return min(self._base + pieces * self.per_piece, self.total)

    @contextmanager
    def active(self) -> Iterator[Steps]:
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)


# Per thread (and per asyncio task): two runs in two threads never see each other's steps.
_ACTIVE: ContextVar[Steps | None] = ContextVar("gendr_pix_steps", default=None)


def block_done() -> None:
    """The UNet calls this after each block: one step of progress and a stop check; a no-op outside
    `upscale()`.

    Cost: one Python call per block, no device sync. On a GPU the blocks are queued asynchronously, so
    this runs when a block is queued, not when it finishes: the bar can lead the device by the queued
    work, and a stop request stops the queueing; what is already queued (at most the rest of one
    pass) still runs before the error surfaces. Skipped while torch.compile traces the UNet, so a
    compiled UNet has no graph breaks and reports per tile only.
    """
    if torch.compiler.is_compiling():
        return
    steps = _ACTIVE.get()
    if steps is not None:
        steps.advance()


def stop_point() -> None:
    """A stop check inside a long block (attention over many tokens), without a progress step."""
    if torch.compiler.is_compiling():
        return
    steps = _ACTIVE.get()
    if steps is not None:
        check_stop(steps.should_stop)
