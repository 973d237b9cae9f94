""".ci/check_archive.py: the registry archive holds the pack and its model, and no tests, docs data or scripts."""

import importlib.util
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SPEC = importlib.util.spec_from_file_location("check_archive", ROOT / ".ci" / "check_archive.py")
check = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(check)

TRACKED = ["__init__.py", "pyproject.toml", "README.md", "LICENSE", "requirements.txt", "nodes/__init__.py",
           "web/compare.js", "gendr_pix/__init__.py", check.MODEL, "example_workflows/basic.json",
           "docs/QUALITY.md", "docs/panel.jpg", "docs/eval/a.json", "tests/test_x.py", "scripts/s.py",
           "configs/c.toml", ".ci/run"]
PACK = [n for n in TRACKED if check.in_pack(n)] + ["docs/QUALITY.md"]


def test_the_pack_alone_passes():
    assert check.problems(PACK, 35_000_000, TRACKED) == []


def test_tests_docs_data_scripts_and_configs_are_refused():
    found = check.problems(TRACKED, 35_000_000, TRACKED)
    refused = {line.split(": ")[1].split(" ")[0] for line in found}
    assert refused == {"docs/panel.jpg", "docs/eval/a.json", "tests/test_x.py", "scripts/s.py",
                       "configs/c.toml", ".ci/run"}


def test_a_missing_pack_file_or_model_and_the_size_limit_are_named():
    found = check.problems([n for n in PACK if n not in ("web/compare.js", check.MODEL)], 45_000_001, TRACKED)
    assert found == ["archive is 45.0 MB, more than 45 MB", f"missing from the archive: {check.MODEL}",
                     "missing from the archive: web/compare.js"]


def test_the_model_must_be_the_tracked_file(tmp_path):
    (tmp_path / check.MODEL).parent.mkdir(parents=True)
    (tmp_path / check.MODEL).write_bytes(b"tracked")
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.writestr(check.MODEL, b"another")
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        assert "differs from the tracked file" in check.model_problems(z, tmp_path)[0]


def test_the_import_check_uses_the_archive_not_the_checkout(tmp_path):
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.writestr("README.md", "no package here")
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        found = check.import_problems(z)
    assert len(found) == 1 and found[0].startswith("gendr_pix from the archive does not work: ")
