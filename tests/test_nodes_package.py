"""The pack as ComfyUI and its users see it, checked without ComfyUI: entry point, node ids and
tooltips, help pages, example workflows, packaging."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / "example_workflows").glob("*.json"))
NODE_FILES = [ROOT / "nodes" / "model_nodes.py", ROOT / "nodes" / "image_nodes.py"]
CORE_NODES_USED = {"LoadImage", "SaveImage", "PreviewImage", "LoadVideo", "GetVideoComponents", "CreateVideo",
                   "SaveVideo", "Note"}


def _calls(path: Path):
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)]


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def declared_node_ids() -> list[str]:
    ids = []
    for path in NODE_FILES:
        for call in _calls(path):
            value = _keyword(call, "node_id")
            if isinstance(value, ast.Constant):
                ids.append(value.value)
    return ids


def test_root_module_imports_outside_comfyui_and_is_v3_only():
    spec = importlib.util.spec_from_file_location("gendr_pix_pack", ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["gendr_pix_pack"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["gendr_pix_pack"]
    assert inspect.iscoroutinefunction(module.comfy_entrypoint)
    assert not hasattr(module, "NODE_CLASS_MAPPINGS")  # it would silently win over the V3 entry point
    assert (ROOT / module.WEB_DIRECTORY / "compare.js").is_file()


def test_node_ids_are_the_frozen_ones_and_prefixed(frozen_nodes):
    ids = declared_node_ids()
    assert sorted(ids) == sorted(frozen_nodes)
    assert all(i.startswith("GenDRPix") for i in ids)


@pytest.mark.parametrize("path", NODE_FILES, ids=lambda p: p.name)
def test_every_input_has_a_tooltip(path):
    inputs = [c for c in _calls(path) if isinstance(c.func, ast.Attribute) and c.func.attr == "Input"]
    assert inputs
    for call in inputs:
        tooltip = _keyword(call, "tooltip")
        name = call.args[0].value if call.args else "?"
        assert tooltip is not None, f"{path.name}: input {name!r} has no tooltip"


def test_every_node_has_a_help_page(frozen_nodes):
    for node_id in frozen_nodes:
        page = ROOT / "web" / "docs" / f"{node_id}.md"
        assert page.is_file(), f"missing {page}"
        assert page.read_text().startswith("# ")


def test_example_workflows_are_there_basic_first():
    # ComfyUI's template browser titles a pack's template by its file name; the number orders them
    # (web/templates.js sorts this pack's list, which ComfyUI returns in file-system order).
    names = [p.stem for p in WORKFLOWS]
    assert names[:2] == ["GenDR-Pix 1 - Basic x4 upscale", "GenDR-Pix 2 - More detail with guidance"]
    assert "GenDR-Pix 4 - Video upscale" in names
    assert all(re.fullmatch(r"GenDR-Pix \d - [A-Z][A-Za-z0-9 ]+", n) for n in names), names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_example_workflow_is_complete_ui_format(path, frozen_widgets, frozen_nodes):
    wf = json.loads(path.read_text())
    assert path.with_suffix(".jpg").is_file(), "each workflow needs a same-name .jpg thumbnail"
    assert {"nodes", "links", "version"} <= wf.keys()
    nodes = {n["id"]: n for n in wf["nodes"]}
    types = {n["type"] for n in nodes.values()}
    assert not any("VAE" in t for t in types), "no VAE nodes in our workflows"
    assert types <= set(frozen_widgets) | CORE_NODES_USED, f"unexpected node types {types - set(frozen_widgets)}"
    assert "GenDRPixUpscale" in types and "GenDRPixModelLoader" in types
    for link in wf["links"]:
        link_id, src, _, dst, dst_slot, _ = link
        assert src in nodes and dst in nodes
        assert nodes[dst]["inputs"][dst_slot]["link"] == link_id
    for node in nodes.values():
        if node["type"] in frozen_widgets:
            # Optional widgets come last, so a workflow saved before one existed may omit its value.
            widgets = frozen_widgets[node["type"]]
            required = [w for w in widgets if w not in frozen_nodes[node["type"]]["optional"]]
            assert len(required) <= len(node.get("widgets_values") or []) <= len(widgets), node["type"]
        if node["type"] in ("LoadImage", "LoadVideo"):
            shipped = path.parent / node["widgets_values"][0]
            assert shipped.is_file(), f"{path.name} uses {shipped.name}, which is not shipped beside it"


def test_pyproject_registry_metadata():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project, comfy = data["project"], data["tool"]["comfy"]
    assert "comfyui" not in project["name"].lower()
    assert comfy["PublisherId"] and comfy["DisplayName"]
    assert comfy["requires-comfyui"] == ">=0.3.64"
    assert not any(dep.split("=")[0].split(">")[0].strip() == "torch" for dep in project["dependencies"])
    requirements = (ROOT / "requirements.txt").read_text().splitlines()
    assert not any(line.strip().startswith("torch") for line in requirements)
