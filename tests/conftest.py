"""Shared fixtures: tiny random GenDR-Pix models (preset "tiny") saved like real model files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import gendr_pix


def tiny_network(seed: int = 0) -> gendr_pix.GenDRPix:
    """A randomly initialised tiny model with distinct positive/negative embeddings (so guidance
    has an effect). For tests only: its output is noise-like, never a real upscale."""
    torch.manual_seed(seed)
    net = gendr_pix.GenDRPix(gendr_pix.ModelConfig(unet=gendr_pix.UNET_PRESETS["tiny"]))
    with torch.no_grad():
        net.positive.normal_()
        net.negative.normal_()
    return net.eval().requires_grad_(False)


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    gendr_pix.save_model(tiny_network(), path, dtype=None)
    return path


FROZEN_NODES: dict[str, dict[str, tuple[str, ...]]] = {
    # Released node ids and input order. Saved workflows store widget values by position, so these
    # never change: add new inputs at the end (optional), never rename, reorder or remove.
    "GenDRPixModelLoader": {"required": ("model_name", "precision"), "optional": ()},
    "GenDRPixSelfEnsemble": {"required": ("model", "shifts"), "optional": ()},
    "GenDRPixGuidance": {"required": ("model", "scale", "mode"), "optional": ("positive", "negative")},
    "GenDRPixUpscale": {"required": ("model", "image", "scale", "tile_size", "tile_overlap", "color_fix"),
                        "optional": ()},
    "GenDRPixCompare": {"required": ("before", "after"), "optional": ()},
}
WIDGETS: dict[str, tuple[str, ...]] = {
    # The widget inputs of FROZEN_NODES, in the order a saved workflow's widgets_values lists them.
    "GenDRPixModelLoader": ("model_name", "precision"),
    "GenDRPixSelfEnsemble": ("shifts",),
    "GenDRPixGuidance": ("scale", "mode"),
    "GenDRPixUpscale": ("scale", "tile_size", "tile_overlap", "color_fix"),
    "GenDRPixCompare": (),
}


@pytest.fixture(scope="session")
def frozen_nodes() -> dict[str, dict[str, tuple[str, ...]]]:
    return FROZEN_NODES


@pytest.fixture(scope="session")
def frozen_widgets() -> dict[str, tuple[str, ...]]:
    return WIDGETS
