"""The checkpoint error type and the one rule every user-facing message follows: plain text.

Kept apart from checkpoint.py so the modules that read sidecar files (configs, pickles) can raise it
without an import cycle.
"""

from __future__ import annotations

import os
import re

from .config import PIXEL_CHANNELS

EXPECTED = (
    f"a GenDR-Pix checkpoint: a pixel-space SD2.1-shaped UNet with {PIXEL_CHANNELS} input/output channels "
    "(our .safetensors format, or a diffusers/LDM UNet state dict)"
)

# Terminal escape sequences (colours, bold: torch wraps parts of its messages in them). A ComfyUI
# dialog shows them as "[1m...[0m", so no text we pass on may keep them.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def plain(text: str) -> str:
    """`text` without terminal escape codes."""
    return _ANSI.sub("", text)


class CheckpointError(ValueError):
    """A file is not a loadable GenDR-Pix checkpoint. The message names the file, what was found,
    what was expected and, where there is one, the fix."""

    def __init__(self, path: str | os.PathLike, found: str, expected: str = EXPECTED, fix: str = "") -> None:
        self.path, self.found, self.expected, self.fix = str(path), plain(found), expected, plain(fix)
        message = f"{self.path}: {self.found}. Expected {expected}."
        super().__init__(f"{message} {self.fix}".strip())


# Error types print as module + class name in ComfyUI's error dialog; the public name reads better
# than the defining module's, and `gendr_pix.CheckpointError` is where users import it from.
CheckpointError.__module__ = "gendr_pix"
