"""Logic behind the model-side nodes (loader, self-ensemble, guidance), without ComfyUI."""

from __future__ import annotations

import os
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
import torch

import gendr_pix
from nodes.model_value import (
    BUNDLED_CHOICE,
    ModelCache,
    PixModel,
    context_from_conditioning,
    file_identity,
    load_network,
    model_choices,
    resolve_model_path,
    with_antiring,
    with_ensemble,
    with_grid_filter,
    with_guidance,
)
from nodes.upscale_run import UpscaleRequest, options_for


@pytest.fixture()
def pix(tiny_model_file) -> PixModel:
    return PixModel(network=load_network(tiny_model_file, torch.float32), source=str(tiny_model_file))


def test_choices_list_bundled_first_and_keep_folder_order():
    assert model_choices(["b.safetensors", "a/c.pt"]) == [BUNDLED_CHOICE, "b.safetensors", "a/c.pt"]
    assert model_choices([]) == [BUNDLED_CHOICE]


def test_missing_bundled_model_gives_an_error_naming_file_and_folder(tmp_path):
    absent = tmp_path / "gendr-pix-small-x4.safetensors"
    with pytest.raises(FileNotFoundError) as err:
        resolve_model_path(BUNDLED_CHOICE, lambda name: None, bundled=absent)
    assert str(absent) in str(err.value) and "models/gendr_pix" in str(err.value)


def test_bundled_choice_resolves_to_the_bundled_file(tiny_model_file):
    assert resolve_model_path(BUNDLED_CHOICE, lambda name: None, bundled=tiny_model_file) == tiny_model_file


def test_folder_choice_resolves_through_the_lookup(tiny_model_file, tmp_path):
    assert resolve_model_path("x.safetensors", lambda name: str(tiny_model_file)) == tiny_model_file
    with pytest.raises(FileNotFoundError, match="'gone.safetensors' was not found"):
        resolve_model_path("gone.safetensors", lambda name: None)
    with pytest.raises(FileNotFoundError):  # ComfyUI found a path that has since been deleted
        resolve_model_path("gone.safetensors", lambda name: str(tmp_path / "gone.safetensors"))


@pytest.mark.parametrize(
    ("precision", "device", "bf16", "fp16", "want"),
    [
        ("auto", "cpu", True, True, torch.float32),
        ("auto", "cuda", True, True, torch.bfloat16),
        ("auto", "cuda", False, True, torch.float16),
        ("auto", "mps", False, False, torch.float32),
        ("fp16", "cpu", False, False, torch.float16),
        ("bf16", "cuda", False, True, torch.bfloat16),
        ("fp32", "cuda", True, True, torch.float32),
    ],
)
def test_precision_resolution(precision, device, bf16, fp16, want):
    assert gendr_pix.resolve_dtype(precision, device_type=device, bf16_ok=bf16, fp16_ok=fp16) == want


def test_unknown_precision_is_rejected():
    with pytest.raises(ValueError, match="precision must be one of"):
        gendr_pix.resolve_dtype("int8", device_type="cpu", bf16_ok=False, fp16_ok=False)


def test_loader_reads_the_file_in_the_requested_dtype(tiny_model_file):
    net = load_network(tiny_model_file, torch.bfloat16)
    assert net.dtype == torch.bfloat16 and net.device.type == "cpu"
    assert net.config.unet == gendr_pix.UNET_PRESETS["tiny"]


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"\x08\x00\x00\x00\x00\x00\x00\x00{bad json"])
def test_bad_model_file_raises_checkpoint_error_naming_the_file(tmp_path, content):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(content)
    with pytest.raises(gendr_pix.CheckpointError) as err:
        load_network(bad, torch.float32)
    assert str(bad) in str(err.value)


def test_cache_reuses_a_model_until_the_file_changes(tiny_model_file, tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(tiny_model_file.read_bytes())
    cache, loads = ModelCache(capacity=1), []

    def get():
        key = (*file_identity(path), "fp32")
        return cache.get_or_load(key, lambda: loads.append(1) or PixModel(network=load_network(path, torch.float32)))

    first = get()
    assert get() is first and len(loads) == 1
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file was replaced
    assert get() is not first and len(loads) == 2


def test_cache_evicts_the_oldest_entry():
    cache = ModelCache(capacity=2)
    for key in "abc":
        cache.get_or_load(key, lambda key=key: key)
    loaded = []
    cache.get_or_load("a", lambda: loaded.append("a") or "a2")
    assert loaded == ["a"]  # "a" had been evicted by "c"
    with pytest.raises(ValueError):
        ModelCache(capacity=0)


def test_ensemble_returns_a_copy_and_leaves_the_input_alone(pix):
    out = with_ensemble(pix, 4)
    assert out.ensemble == 4 and pix.ensemble == 1
    assert out.network is pix.network
    with pytest.raises(FrozenInstanceError):
        out.ensemble = 2


@pytest.mark.parametrize("size", [0, 3, 16, "4"])
def test_ensemble_rejects_sizes_the_core_does_not_have(pix, size):
    with pytest.raises(ValueError, match="self-ensemble size must be one of"):
        with_ensemble(pix, size)


def test_the_artifact_filters_are_on_without_their_nodes(pix):
    assert (pix.grid_filter, pix.antiring) == (64, 0.5)
    options = options_for(pix, UpscaleRequest())
    assert (options.grid_filter, options.antiring) == (64, 0.5)


def test_anti_ringing_returns_a_copy_and_checks_the_strength(pix):
    out = with_antiring(with_ensemble(pix, 2), 0.25)
    assert (out.antiring, out.ensemble, pix.antiring) == (0.25, 2, 0.5)
    assert options_for(with_antiring(pix, 0.0), UpscaleRequest()).antiring == 0.0
    with pytest.raises(ValueError, match=r"^strength must be in \[0, 1\]"):
        with_antiring(pix, 1.5)


def test_grid_filter_returns_a_copy_and_checks_the_window(pix):
    out = with_grid_filter(with_ensemble(pix, 2), 32)
    assert (out.grid_filter, out.ensemble, pix.grid_filter) == (32, 2, 64)
    assert with_grid_filter(out, 0).grid_filter == 0
    with pytest.raises(ValueError, match="^window must be 0 .off. or a multiple of 8.*got 20"):
        with_grid_filter(pix, 20)


def test_guidance_returns_a_copy_with_mode_and_scale(pix):
    out = with_guidance(pix, 2.5, "padcfg")
    assert out.guidance == gendr_pix.Guidance(scale=2.5, mode="padcfg")
    assert pix.guidance == gendr_pix.Guidance()
    assert out.positive is None and out.negative is None


def test_guidance_rejects_bad_mode_and_scale(pix):
    with pytest.raises(ValueError, match="guidance mode"):
        with_guidance(pix, 1.5, "pag")
    with pytest.raises(ValueError, match="guidance scale"):
        with_guidance(pix, 99.0, "cfg")


def _conditioning(width: int, tokens: int = 77, batch: int = 1):
    return [[torch.randn(batch, tokens, width), {"pooled_output": torch.randn(batch, width)}]]


def test_conditioning_of_matching_width_replaces_the_stored_embeddings(pix):
    dim = pix.context_dim
    pos, neg = _conditioning(dim, batch=2), _conditioning(dim, tokens=154)
    out = with_guidance(pix, 1.5, "cfg", pos, neg)
    torch.testing.assert_close(out.positive, pos[0][0][:1])
    assert out.negative.shape == (1, 154, dim)
    only_neg = with_guidance(out, 2.0, "cfg", None, _conditioning(dim))
    assert only_neg.positive is out.positive  # an unconnected input keeps the earlier override


def test_conditioning_of_wrong_width_is_a_clear_error(pix):
    with pytest.raises(ValueError) as err:
        with_guidance(pix, 1.5, "cfg", _conditioning(768), None)
    message = str(err.value)
    assert "768" in message and str(pix.context_dim) in message and "positive" in message


@pytest.mark.parametrize("bad", [[], "text", [[torch.zeros(77, 32), {}]], [["not a tensor", {}]]])
def test_malformed_conditioning_is_rejected(bad):
    with pytest.raises(ValueError, match="negative conditioning"):
        context_from_conditioning(bad, "negative", 32)


def test_guided_model_runs_through_the_core_with_the_given_context(pix):
    """The replaced embedding really reaches the network: same result as passing it to the core."""
    pos = _conditioning(pix.context_dim)
    guided = with_guidance(pix, 1.0, "cfg", pos)
    x = torch.rand(1, 3, 16, 16)
    ours = gendr_pix.upscale(guided.network, x, gendr_pix.UpscaleOptions(scale=2.0), positive=guided.positive)
    stored = gendr_pix.upscale(pix.network, x, gendr_pix.UpscaleOptions(scale=2.0))
    direct = gendr_pix.upscale(pix.network, x, gendr_pix.UpscaleOptions(scale=2.0), positive=pos[0][0][:1])
    torch.testing.assert_close(ours, direct)
    assert not torch.allclose(ours, stored)


def test_bundled_default_is_the_core_default_model_name():
    assert BUNDLED_CHOICE.endswith(Path(gendr_pix.DEFAULT_MODEL).name)
