"""Where fetched data and converted weights live: one cache directory outside the repository."""

from __future__ import annotations

import os
from pathlib import Path

ENV_CACHE = "GENDR_PIX_CACHE"


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The cache directory: `override`, else $GENDR_PIX_CACHE, else ~/.cache/gendr-pix."""
    if override:
        return Path(override)
    env = os.environ.get(ENV_CACHE)
    return Path(env) if env else Path.home() / ".cache" / "gendr-pix"


class MissingAssetError(FileNotFoundError):
    """A converted weight file or fetched package is not in the cache; the message says which command makes it."""

    def __init__(self, path: Path, command: str) -> None:
        super().__init__(f"{path}: not found. Create it once with `python -m gendr_pix {command}` "
                         f"(or set ${ENV_CACHE} to the cache that has it).")
