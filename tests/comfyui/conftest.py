"""One ComfyUI server for every test in this folder that asks for it (see comfy_server.py)."""

from __future__ import annotations

import pytest

from .comfy_server import running_server


@pytest.fixture(scope="session")
def server(tmp_path_factory, tiny_model_file):
    with running_server(tmp_path_factory.mktemp("comfy_base"), tiny_model_file) as srv:
        yield srv


@pytest.fixture(scope="session")
def object_info(server):
    return server.get("/object_info")
