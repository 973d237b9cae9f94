"""device= and dtype= in the Python API take what the CLI's --device and --dtype take, "auto" included,
and mean the same: one resolver (`resolve_device`, `device_dtype`) serves both."""

from __future__ import annotations

import pytest
import torch
from conftest import make_tiny

import gendr_pix as g
from gendr_pix.cli import main

CPU = torch.device("cpu")


def test_auto_loads_and_upscales_on_this_machine(tiny_model_file):
    model = g.load_model(tiny_model_file, device="auto", dtype="auto")
    assert model.device == g.resolve_device("auto") and model.dtype == g.device_dtype("auto", model.device)
    x = torch.rand(1, 3, 10, 12)
    assert torch.equal(g.upscale(model, x, device="auto", dtype="auto"), g.upscale(model, x))


def test_the_default_model_loads_with_auto(tiny_model_file, monkeypatch):
    monkeypatch.setattr("gendr_pix.checkpoint.DEFAULT_MODEL", tiny_model_file)
    model = g.load_default_model(device="auto")
    assert model.device.type == g.resolve_device("auto").type and model.dtype == torch.float32


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16),
                                              ("fp16", torch.float16), (torch.bfloat16, torch.bfloat16)])
def test_precision_names_are_accepted(tiny_model_file, precision, dtype):
    assert g.load_model(tiny_model_file, device="cpu", dtype=precision).dtype == dtype


def test_a_precision_for_one_call_is_undone_afterwards():
    model = make_tiny()
    x = torch.rand(1, 3, 8, 8)
    out = g.upscale(model, x, g.UpscaleOptions(scale=2), dtype="bf16")
    assert model.dtype == torch.float32 and out.dtype == torch.float32
    assert torch.equal(out, g.upscale(model.to(torch.bfloat16), x, g.UpscaleOptions(scale=2)))


def test_auto_follows_the_hardware(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert g.resolve_device("auto") == CPU and g.device_dtype("auto", CPU) == torch.float32
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    mps = g.resolve_device("auto")
    assert mps.type == "mps" and g.device_dtype("auto", mps) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cuda = g.resolve_device("auto")
    assert cuda.type == "cuda"
    for bf16, want in ((True, torch.bfloat16), (False, torch.float16)):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda bf16=bf16: bf16)
        assert g.device_dtype("auto", cuda) == want


@pytest.mark.parametrize("kwargs, message", [
    ({"device": "gpu0"}, "unknown device 'gpu0' (use auto, cpu, cuda, cuda:1 or mps)"),
    ({"dtype": "int8"}, "precision must be one of ('auto', 'fp32', 'fp16', 'bf16'), got 'int8'"),
    ({"dtype": torch.int8}, "dtype must be a floating-point type"),
])
def test_bad_values_are_named(tiny_model_file, kwargs, message):
    with pytest.raises(ValueError) as e:
        g.load_model(tiny_model_file, **kwargs)
    assert message in str(e.value)
    with pytest.raises(ValueError) as e:
        g.upscale(make_tiny(), torch.rand(1, 3, 8, 8), **kwargs)
    assert message in str(e.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_says_so():
    with pytest.raises(ValueError, match="'cuda' was asked for but this torch build sees no CUDA GPU"):
        g.resolve_device("cuda")


@pytest.mark.parametrize("device", ["gpu0", "cuda:7"])
def test_the_cli_and_the_api_answer_alike(tiny_model_file, tmp_path, capsys, device):
    g.save_image(torch.rand(1, 3, 8, 8), tmp_path / "a.png")
    with pytest.raises(ValueError) as api:
        g.load_model(tiny_model_file, device=device)
    assert main(["upscale", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file),
                 "--device", device]) == 2
    assert capsys.readouterr().err.strip() == f"error: {api.value}"
