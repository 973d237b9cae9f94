"""Errors whose fix is a setting, named as each front end's user sees it.

The core validates once and writes each setting it names as a `{placeholder}` (`{tile}`,
`{tile_overlap}`, `{fp32}`). `str(error)` reads with the Python API's names (`tile`,
`dtype=torch.float32`); a front end calls `error.named({...})` for its own: the node's widget
`tile_size`, the CLI's `--tile`.
"""

from __future__ import annotations

from collections.abc import Mapping

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
