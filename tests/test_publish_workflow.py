""".github/workflows/publish.yml: publishes on a pyproject.toml change on main or by hand, and does
nothing but say so when the REGISTRY_ACCESS_TOKEN secret is missing."""

import re
from pathlib import Path

import yaml

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "publish.yml"
HAS_TOKEN = "${{ env.REGISTRY_ACCESS_TOKEN != '' }}"


def _load():
    data = yaml.safe_load(WORKFLOW.read_text())
    return data[True] if True in data else data["on"], data["jobs"]["publish-node"]  # YAML 1.1 reads `on` as True


def test_triggers_are_a_pyproject_change_on_main_and_a_manual_run():
    on, _ = _load()
    assert on["push"] == {"branches": ["main"], "paths": ["pyproject.toml"]}
    assert "workflow_dispatch" in on


def test_every_step_but_the_notice_needs_the_secret():
    _, job = _load()
    assert job["env"]["REGISTRY_ACCESS_TOKEN"] == "${{ secrets.REGISTRY_ACCESS_TOKEN }}"
    notice, *rest = job["steps"]
    assert notice["if"] == "${{ env.REGISTRY_ACCESS_TOKEN == '' }}" and "uses" not in notice
    assert rest and all(step.get("if") == HAS_TOKEN for step in rest)


def test_the_archive_is_checked_before_a_pinned_publish_action():
    _, job = _load()
    names = [s.get("uses", s.get("run", "")) for s in job["steps"]]
    check = next(i for i, n in enumerate(names) if ".ci/check_archive.py node.zip" in n)
    publish = next(i for i, n in enumerate(names) if n.startswith("Comfy-Org/publish-node-action@"))
    assert check < publish
    assert re.fullmatch(r"Comfy-Org/publish-node-action@[0-9a-f]{40}", names[publish])
    assert job["steps"][publish]["with"]["skip_checkout"] == "true"
