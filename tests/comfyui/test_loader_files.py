"""Against a real ComfyUI: the loader with foreign model files (a diffusers pipeline folder, a bare
UNet), its settings box and warning, and how its errors reach the user (plain type names, plain text).
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import gendr_pix

from .comfy_server import EXAMPLES, PACK_FOLDER, needs_comfyui
from .test_frontend import CHROMIUM, NODE, PLAYWRIGHT_CORE
from .test_server import _execution_error, _upscale_prompt

pytestmark = needs_comfyui
ANSI_OR_ADVICE = ("\x1b", "[1m", "weights_only=False")


class PickledHyperparameters:
    """A class a Lightning-style checkpoint pickles; the server can never import it."""


def _models(server):
    return server.base / "models" / "gendr_pix"


def _tiny_unet(tiny_model_file):
    return gendr_pix.load_model(tiny_model_file)


def _run(server, model: str, settings: str | None = None, color: int = 0x406080) -> dict:
    prompt = _upscale_prompt(model, 24)
    prompt["1"]["inputs"]["color"] = color
    if settings is not None:
        prompt["2"]["inputs"]["settings"] = settings
    return server.wait(server.submit(prompt))


def _warning(entry: dict) -> str:
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    return entry["outputs"]["2"]["gendr_pix_warning"][0]


def _choices(server) -> list[str]:
    info = server.get("/object_info/GenDRPixModelLoader")["GenDRPixModelLoader"]
    return info["input"]["required"]["model_name"][1]["options"]


def test_loader_script_is_served(server):
    assert f"/extensions/{PACK_FOLDER}/loader.js" in server.get("/extensions")
    settings = server.get("/object_info/GenDRPixModelLoader")["GenDRPixModelLoader"]["input"]["optional"]["settings"]
    assert settings[0] == "STRING" and settings[1]["multiline"] and settings[1]["default"] == ""


def test_diffusers_pipeline_folder_is_listed_loads_and_warns_on_the_node(server, tiny_model_file):
    model = _tiny_unet(tiny_model_file)
    cfg = model.config.unet
    unet = _models(server) / "tiny-release" / "unet"
    unet.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.unet.state_dict().items()},
              unet / "diffusion_pytorch_model.safetensors")
    (unet / "config.json").write_text(json.dumps({
        "_class_name": "UNet2DConditionModel", "in_channels": 192, "out_channels": 192,
        "block_out_channels": list(cfg.block_channels), "layers_per_block": cfg.layers_per_block,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "cross_attention_dim": cfg.context_dim,
        "attention_head_dim": [w // cfg.head_dim for w in cfg.block_channels], "use_linear_projection": True,
        "norm_num_groups": cfg.norm_groups}))
    (unet.parent / "scheduler").mkdir()
    (unet.parent / "scheduler" / "scheduler_config.json").write_text('{"prediction_type": "epsilon"}')
    choice = "tiny-release/unet/diffusion_pytorch_model.safetensors"
    assert choice in _choices(server)
    warning = _warning(_run(server, choice))
    assert "timestep=354" in warning and "Model Loader's settings box" in warning
    assert "head_dim" not in warning and "prediction" not in warning  # read from the folder's configs
    warning = _warning(_run(server, choice, "timestep=354\nscale=4"))
    assert "timestep" not in warning and "positive/negative" in warning


def test_bare_unet_warns_and_the_settings_box_sets_what_it_cannot_store(server, tiny_model_file):
    model = _tiny_unet(tiny_model_file)
    save_file({k: v.contiguous() for k, v in model.unet.state_dict().items()},
              _models(server) / "bare-unet.safetensors")
    assert "bare-unet.safetensors" in _choices(server)
    warning = _warning(_run(server, "bare-unet.safetensors"))
    for phrase in ("head_dim=64", "norm_groups=32", "timestep=354", "alpha_bar=0.5", "prediction=epsilon"):
        assert phrase in warning, warning
    warning = _warning(_run(server, "bare-unet.safetensors", "head_dim=16\nnorm_groups=8", color=0x605040))
    assert "head_dim" not in warning and "norm_groups" not in warning
    error = _execution_error(_run(server, "bare-unet.safetensors", "head_dm=16", color=0x605041))
    assert error["node_type"] == "GenDRPixModelLoader" and error["exception_type"] == "gendr_pix.ConfigError"
    assert "settings 'head_dm=16': unknown setting 'head_dm'" in error["exception_message"]


def test_self_describing_file_has_an_empty_warning(server):
    assert _warning(_run(server, "tiny.safetensors", color=0x102031)) == ""


def test_errors_print_plain_type_names_and_plain_text(server, tiny_model_file):
    models = _models(server)
    (models / "moved.safetensors").symlink_to(models / "does-not-exist.safetensors")  # listed, then missing
    broken = _tiny_unet(tiny_model_file)
    with torch.no_grad():
        broken.unet.conv_in.weight[0, 0, 0, 0] = float("nan")
    gendr_pix.save_model(broken, models / "nan-weights.safetensors")
    torch.save({"state_dict": broken.state_dict(), "hyper_parameters": PickledHyperparameters()},
               models / "lightning.ckpt")
    cases = {
        "moved.safetensors": ("FileNotFoundError", "was not found"),
        "broken.safetensors": ("gendr_pix.CheckpointError", "neither safetensors nor a PyTorch pickle"),
        "nan-weights.safetensors": ("gendr_pix.CheckpointError", "unet.conv_in.weight (1 values)"),
        "lightning.ckpt": ("gendr_pix.CheckpointError", "PickledHyperparameters"),
    }
    for name, (kind, phrase) in cases.items():
        error = _execution_error(_run(server, name, color=0x203040))
        assert error["node_type"] == "GenDRPixModelLoader", name
        assert error["exception_type"] == kind, (name, error["exception_type"])
        assert phrase in error["exception_message"], error["exception_message"]
        assert not any(bad in error["exception_message"] for bad in ANSI_OR_ADVICE), error["exception_message"]
    with urllib.request.urlopen(f"{server.url}/system_stats") as r:
        assert r.status == 200


@pytest.mark.skipif(not (NODE and PLAYWRIGHT_CORE and CHROMIUM),
                    reason="needs node, PLAYWRIGHT_CORE (an npm playwright-core folder) and chromium")
def test_warning_shows_on_the_node_and_as_a_toast_in_the_page(server, tiny_model_file):
    model = _tiny_unet(tiny_model_file)
    save_file({k: v.contiguous() for k, v in model.unet.state_dict().items()},
              _models(server) / "ui-bare.safetensors")
    env = {**os.environ, "PLAYWRIGHT_CORE": PLAYWRIGHT_CORE, "CHROMIUM": CHROMIUM}
    done = subprocess.run([NODE, str(Path(__file__).with_name("loader_warning_check.cjs")), server.url,
                           str(EXAMPLES / "GenDR-Pix 1 - Basic x4 upscale.json"), "ui-bare.safetensors",
                           "head_dim=16\nnorm_groups=8"], capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, f"{done.stderr[-3000:]}\n{server.tail()}"
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["loaded"] == ["(bundled) gendr-pix-small-x4.safetensors", "auto", ""]  # saved with two values
    guessed, given = report["guessed"], report["given"]
    assert guessed["status"] == "success" and guessed["widgets"][:3] == ["model_name", "precision", "settings"]
    assert guessed["shown"] and "head_dim=64" in guessed["warning"] and "settings box" in guessed["warning"]
    assert any("head_dim=64" in toast for toast in guessed["toasts"]), guessed["toasts"]
    assert len(guessed["serialized"]) == 3  # the warning box is not a saved widget value
    assert given["status"] == "success" and given["shown"] and "head_dim" not in given["warning"]
    assert "positive/negative" in given["warning"]
    # 0.3.64's frontend throws one error of its own while loading its settings; none may come from us.
    assert not [e for e in report["console"] if PACK_FOLDER in e], report["console"]
