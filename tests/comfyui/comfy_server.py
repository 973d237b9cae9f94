"""A real ComfyUI server for the tests in this folder: started headless on the CPU from COMFYUI_DIR with
COMFYUI_PYTHON (default: this interpreter), with only this pack. Everything it writes goes to a
temporary --base-directory; the pack is linked into its custom_nodes/."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

COMFYUI_DIR = os.environ.get("COMFYUI_DIR")
COMFYUI_PYTHON = os.environ.get("COMFYUI_PYTHON", sys.executable)
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "example_workflows"
PACK_FOLDER = "gendr-pix"
START_TIMEOUT = 240
RUN_TIMEOUT = 600

needs_comfyui = pytest.mark.skipif(not COMFYUI_DIR,
                                   reason="set COMFYUI_DIR (and COMFYUI_PYTHON) to run against ComfyUI")


class Server:
    def __init__(self, url: str, base: Path, process: subprocess.Popen, log: Path) -> None:
        self.url, self.base, self.process, self.log = url, base, process, log

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path: str, data: dict):
        request = urllib.request.Request(self.url + path, data=json.dumps(data).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                body = r.read()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"POST {path} -> {e.code}: {e.read().decode()[:2000]}") from None
        return json.loads(body) if body.strip() else None

    def submit(self, prompt: dict) -> str:
        return self.post("/prompt", {"prompt": prompt, "client_id": "gendr-pix-tests"})["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = RUN_TIMEOUT) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            history = self.get(f"/history/{prompt_id}")
            if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
                entry = history[prompt_id]
                if entry["status"].get("status_str") in ("success", "error"):
                    return entry
            assert self.process.poll() is None, f"ComfyUI exited:\n{self.tail()}"
            time.sleep(0.5)
        raise AssertionError(f"prompt {prompt_id} did not finish in {timeout}s\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(base: Path, tiny_model_file: Path) -> Iterator[Server]:
    """ComfyUI serving from the empty folder `base`, with test model files (and nothing in input/)."""
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / PACK_FOLDER).symlink_to(ROOT, target_is_directory=True)
    models = base / "models" / "gendr_pix"
    models.mkdir(parents=True)
    shutil.copy(tiny_model_file, models / "tiny.safetensors")
    (models / "broken.safetensors").write_bytes(b"this is not a checkpoint" * 10)
    (models / "readme.txt").write_text("not a model file: must not be listed")
    extra = base / "elsewhere" / "gendr"
    extra.mkdir(parents=True)
    shutil.copy(tiny_model_file, extra / "tiny-extra.safetensors")
    yaml = base / "extra_model_paths.yaml"
    yaml.write_text(f"gendr_pix_tests:\n  base_path: {base / 'elsewhere'}\n  gendr_pix: gendr\n")
    # No input/ folder and no example inputs: the pack must provide them (nodes/example_inputs.py).
    port = _free_port()
    log = base / "comfyui.log"
    command = [COMFYUI_PYTHON, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
               "--disable-auto-launch", "--base-directory", str(base), "--disable-all-custom-nodes",
               "--whitelist-custom-nodes", PACK_FOLDER, "--database-url", f"sqlite:///{base / 'comfy.db'}",
               "--extra-model-paths-config", str(yaml)]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=COMFYUI_DIR, stdout=out, stderr=subprocess.STDOUT)
    srv = Server(f"http://127.0.0.1:{port}", base, process, log)
    try:
        end = time.monotonic() + START_TIMEOUT
        while True:
            try:
                srv.get("/system_stats")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if process.poll() is not None or time.monotonic() > end:
                    pytest.fail(f"ComfyUI did not start:\n{srv.tail()}")
                time.sleep(1)
        yield srv
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
