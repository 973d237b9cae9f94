"""Error types, and the one rule every user-facing message follows: plain text that names the
setting as the user sees it.

`CheckpointError` is kept apart from checkpoint.py so the modules that read sidecar files (configs,
pickles) can raise it without an import cycle.

`SettingError`: the core validates once and writes each setting it names as a `{placeholder}`
(`{tile}`, `{tile_overlap}`, `{fp32}`). `str(error)` reads with the Python API's names (`tile`,
`dtype=torch.float32`); a front end calls `error.named({...})` for its own: the node's widget
`tile_size`, the CLI's `--tile`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

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


API_NAMES: Mapping[str, str] = {"fp32": "dtype=torch.float32"}
"""Placeholders whose Python API wording is not the placeholder itself."""


class SettingError(ValueError):
    """A setting's value is out of range, or clashes with another one or with the model.

    template: the message; each `{name}` that is not one of `values` is a setting's name.
    values: the other placeholders, filled in as they are (numbers, file names; braces in them are safe).
    """

    def __init__(self, template: str, /, **values: object) -> None:
        self.template, self.values = template, values
        self.names: dict[str, str] = {}
        super().__init__(self._render())

    def named(self, names: Mapping[str, str]) -> SettingError:
        """The same error, with settings named as in `names` (others keep the Python API's names)."""
        error = type(self)(self.template, **self.values)
        error.names = {**self.names, **names}
        error.args = (error._render(),)
        return error

    def _render(self) -> str:
        return self.template.format_map(_Fill(self.values, {**API_NAMES, **self.names}))


class NonFiniteOutputError(SettingError):
    """The model's output holds NaN or infinite values: half precision overflowed, or broken weights.
    Never returned as an image (NaN becomes black when clamped and saved)."""


class _Fill(dict):
    def __init__(self, values: Mapping[str, object], names: Mapping[str, str]) -> None:
        super().__init__(values)
        self.names = names

    def __missing__(self, key: str) -> str:
        return self.names.get(key, key)


SettingError.__module__ = NonFiniteOutputError.__module__ = "gendr_pix"  # as CheckpointError, above
