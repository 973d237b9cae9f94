"""The example workflows' input files, put where ComfyUI's LoadImage and LoadVideo look for them.

A template opened from Browse Templates names its input by file name only (`gendr_pix_example_cat.png`),
and ComfyUI resolves that in its input folder, so the pack copies the files there at startup when they
are missing. A file of the same name that is already there is never replaced. No ComfyUI import here
(tested in CI); comfy_glue.py passes ComfyUI's input folder.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "example_workflows"
INPUT_PATTERN = "gendr_pix_example_*"
"""The inputs the example workflows load; the prefix keeps them apart from a user's files."""


def example_inputs(examples_dir: Path = EXAMPLES_DIR) -> list[Path]:
    return sorted(p for p in examples_dir.glob(INPUT_PATTERN) if p.is_file())


def provide_example_inputs(input_dir: str | Path, examples_dir: Path = EXAMPLES_DIR) -> list[Path]:
    """Copy each example input that `input_dir` lacks into it (creating the folder if needed).

    Returns the files written. Never raises for file-system errors: the nodes work without the examples,
    so a folder that cannot be created or written gets one warning that says what to copy by hand.
    """
    input_dir = Path(input_dir)
    missing = [p for p in example_inputs(examples_dir) if not _present(input_dir / p.name)]
    if not missing:
        return []
    written: list[Path] = []
    try:
        input_dir.mkdir(parents=True, exist_ok=True)
        for source in missing:
            if _copy_to_new_file(source, input_dir / source.name):
                written.append(input_dir / source.name)
    except OSError as e:
        names = ", ".join(p.name for p in missing if input_dir / p.name not in written)
        log.warning("GenDR-Pix: could not copy the example inputs %s into ComfyUI's input folder %s (%s). "
                    "The example workflows need them there: copy them by hand from %s.",
                    names, input_dir, e.strerror or e, examples_dir)
    if written:
        log.info("GenDR-Pix: copied the example inputs %s into %s", ", ".join(p.name for p in written), input_dir)
    return written


def _present(path: Path) -> bool:
    return path.exists() or path.is_symlink()  # a dangling link is still the user's name


def _copy_to_new_file(source: Path, target: Path) -> bool:
    """Copy `source` to `target` only if no file of that name exists (exclusive create, so a file that
    appears meanwhile is not replaced either). Returns False when one exists."""
    try:
        out = open(target, "xb")  # closed below; on failure the half-written file is removed
    except FileExistsError:
        return False
    try:
        with out, open(source, "rb") as src:
            shutil.copyfileobj(src, out)
    except BaseException:
        target.unlink(missing_ok=True)  # ours, half written
        raise
    return True
