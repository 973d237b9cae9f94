"""The example inputs the pack copies into ComfyUI's input folder at startup (nodes/example_inputs.py)."""

from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path

import pytest

from nodes import example_inputs
from nodes.example_inputs import EXAMPLES_DIR, provide_example_inputs

SHIPPED = example_inputs.example_inputs()


def _names(paths) -> list[str]:
    return sorted(p.name for p in paths)


def test_every_example_workflow_input_is_provided():
    loaded = set()
    for workflow in EXAMPLES_DIR.glob("*.json"):
        nodes = json.loads(workflow.read_text())["nodes"]
        loaded |= {n["widgets_values"][0] for n in nodes if n["type"] in ("LoadImage", "LoadVideo")}
    assert loaded and loaded <= {p.name for p in SHIPPED}
    assert not [p for p in SHIPPED if p.suffix in (".json", ".jpg")]  # workflows and thumbnails stay put


def test_copies_the_missing_inputs_into_a_new_folder(tmp_path, caplog):
    target = tmp_path / "base" / "input"
    with caplog.at_level(logging.INFO):
        written = provide_example_inputs(target)
    assert _names(written) == _names(SHIPPED)
    for source in SHIPPED:
        assert (target / source.name).read_bytes() == source.read_bytes()
    assert str(target) in caplog.text and SHIPPED[0].name in caplog.text
    assert provide_example_inputs(target) == []  # the next start finds them


def test_never_replaces_a_users_file_of_the_same_name(tmp_path):
    mine = tmp_path / SHIPPED[0].name
    mine.write_bytes(b"my own picture")
    dangling = tmp_path / SHIPPED[1].name
    dangling.symlink_to(tmp_path / "gone")
    written = provide_example_inputs(tmp_path)
    assert _names(written) == _names(SHIPPED[2:])
    assert mine.read_bytes() == b"my own picture"
    assert dangling.is_symlink() and not dangling.exists()


def test_a_file_appearing_meanwhile_is_kept(tmp_path, monkeypatch):
    """The copy creates the file exclusively: a file written between the check and the copy wins."""
    first = SHIPPED[0].name
    original_present = example_inputs._present

    def present_then_created(path: Path) -> bool:
        found = original_present(path)
        if path.name == first:
            path.write_bytes(b"written meanwhile")
        return found

    monkeypatch.setattr(example_inputs, "_present", present_then_created)
    written = provide_example_inputs(tmp_path)
    assert first not in _names(written)
    assert (tmp_path / first).read_bytes() == b"written meanwhile"


def test_an_input_folder_that_cannot_be_created_logs_what_to_copy(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where ComfyUI's input folder should be")
    with caplog.at_level(logging.WARNING):
        assert provide_example_inputs(blocker / "input") == []
    [record] = caplog.records
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    assert str(blocker / "input") in message and str(EXAMPLES_DIR) in message
    assert all(p.name in message for p in SHIPPED)


def test_a_read_only_input_folder_logs_once_and_copies_nothing(tmp_path, monkeypatch, caplog):
    def refuse(path, mode="r", *args, **kwargs):
        if "x" in mode:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(example_inputs, "open", refuse, raising=False)  # as on a read-only mount (root ignores modes)
    with caplog.at_level(logging.WARNING):
        assert provide_example_inputs(tmp_path) == []
    assert list(tmp_path.iterdir()) == []
    [record] = caplog.records
    assert "Permission denied" in record.getMessage() and str(tmp_path) in record.getMessage()


def test_a_failed_copy_leaves_no_half_written_file(tmp_path, monkeypatch, caplog):
    def disk_full(src, dst):
        dst.write(src.read(100))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(example_inputs.shutil, "copyfileobj", disk_full)
    with caplog.at_level(logging.WARNING):
        assert provide_example_inputs(tmp_path) == []
    assert list(tmp_path.iterdir()) == []
    assert "No space left" in caplog.text


def test_nothing_to_do_when_all_are_there(tmp_path, monkeypatch):
    provide_example_inputs(tmp_path)
    monkeypatch.setattr(example_inputs, "_copy_to_new_file", lambda *a: pytest.fail("copied again"))
    assert provide_example_inputs(tmp_path) == []
