"""Shared fixtures: tiny random models (seeded, preset "tiny"), saved like real model files, and the
frozen node interface."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import gendr_pix as g


def make_tiny(seed: int = 0, **config) -> g.GenDRPix:
    """A tiny random model with distinct positive/negative embeddings, so guidance really changes the
    output. For tests only: its output is noise-like, never a real upscale."""
    torch.manual_seed(seed)
    model = g.GenDRPix(g.ModelConfig(unet=g.UNET_PRESETS["tiny"], **config))
    with torch.no_grad():
        model.positive.normal_()
        model.negative.normal_()
    return model.eval().requires_grad_(False)


def make_random(unet: g.UNetConfig, seed: int = 0, **config) -> g.GenDRPix:
    """A model of shape `unet` with every weight perturbed: zero-initialised layers would hide mapping
    mistakes when a test converts or reloads it."""
    torch.manual_seed(seed)
    model = g.GenDRPix(g.ModelConfig(unet=unet, **config))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model.eval()


@pytest.fixture
def tiny() -> g.GenDRPix:
    return make_tiny()


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    g.save_model(make_tiny(), path, dtype=None)
    return path


FROZEN_NODES: dict[str, dict[str, tuple[str, ...]]] = {
    # Released node ids and input order. Saved workflows store widget values by position, so these
    # never change: add new inputs at the end (optional), never rename, reorder or remove.
    "GenDRPixModelLoader": {"required": ("model_name", "precision"), "optional": ("settings",)},
    "GenDRPixSelfEnsemble": {"required": ("model", "shifts"), "optional": ()},
    "GenDRPixGuidance": {"required": ("model", "scale", "mode"), "optional": ("positive", "negative")},
    "GenDRPixGridFilter": {"required": ("model", "window"), "optional": ()},
    "GenDRPixAntiRinging": {"required": ("model", "strength"), "optional": ()},
    "GenDRPixUpscale": {"required": ("model", "image", "scale", "tile_size", "tile_overlap", "color_fix"),
                        "optional": ()},
    "GenDRPixCompare": {"required": ("before", "after"), "optional": ()},
}
WIDGETS: dict[str, tuple[str, ...]] = {
    # The widget inputs of FROZEN_NODES, in the order a saved workflow's widgets_values lists them.
    # A workflow saved before an optional widget existed lists fewer values; it loads unchanged.
    "GenDRPixModelLoader": ("model_name", "precision", "settings"),
    "GenDRPixSelfEnsemble": ("shifts",),
    "GenDRPixGuidance": ("scale", "mode"),
    "GenDRPixGridFilter": ("window",),
    "GenDRPixAntiRinging": ("strength",),
    "GenDRPixUpscale": ("scale", "tile_size", "tile_overlap", "color_fix"),
    "GenDRPixCompare": (),
}


@pytest.fixture(scope="session")
def frozen_nodes() -> dict[str, dict[str, tuple[str, ...]]]:
    return FROZEN_NODES


@pytest.fixture(scope="session")
def frozen_widgets() -> dict[str, tuple[str, ...]]:
    return WIDGETS


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` need a CUDA device (`python -m pytest -m cuda` on a GPU machine); skipped elsewhere."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run `python -m gendr_pix.bench.gpu_check` on a GPU machine)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)
