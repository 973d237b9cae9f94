"""Shared fixtures: tiny random models (seeded) and a temp folder for checkpoint files."""

from __future__ import annotations

import pytest
import torch

import gendr_pix as g


def make_tiny(seed: int = 0, **config) -> g.GenDRPix:
    """A tiny random model with non-trivial embeddings, so guidance really changes the output."""
    torch.manual_seed(seed)
    model = g.GenDRPix(g.ModelConfig(unet=g.UNET_PRESETS["tiny"], **config))
    with torch.no_grad():
        model.positive.normal_()
        model.negative.normal_()
    return model.eval().requires_grad_(False)


@pytest.fixture
def tiny() -> g.GenDRPix:
    return make_tiny()
