"""Errors a user sees: settings named as each front end names them, and NaN/inf outputs refused."""

import pytest
import torch
from conftest import make_tiny

import gendr_pix as g


def test_a_setting_error_names_settings_as_the_caller_names_them():
    with pytest.raises(g.SettingError) as caught:
        g.UpscaleOptions(tile=64, tile_overlap=64)
    assert str(caught.value) == "tile (64) must be larger than tile_overlap (64)"
    renamed = caught.value.named({"tile": "tile_size"})
    assert str(renamed) == "tile_size (64) must be larger than tile_overlap (64)"
    assert isinstance(renamed, g.SettingError) and isinstance(renamed, ValueError)
    assert str(renamed.named({"tile_overlap": "--tile-overlap"})).endswith("than --tile-overlap (64)")


def test_values_with_braces_are_printed_as_they_are():
    error = g.SettingError("{color_fix} must be one of (a, b), got {value!r}", value="{tile}")
    assert str(error.named({"color_fix": "--color-fix"})) == "--color-fix must be one of (a, b), got '{tile}'"


def broken(**weights) -> g.GenDRPix:
    model = make_tiny()
    with torch.no_grad():
        for name, value in weights.items():
            model.get_parameter(name).view(-1)[0] = value
    return model


def test_nan_weights_are_an_error_naming_the_tensor_and_the_file():
    model = broken(**{"unet.down_blocks.0.resnets.0.conv1.weight": float("nan")})
    model.source = "/models/broken.safetensors"
    with pytest.raises(g.NonFiniteOutputError) as caught:
        g.upscale(model, torch.rand(1, 3, 12, 10))
    message = str(caught.value)
    assert "NaN or infinite values" in message and "unet.down_blocks.0.resnets.0.conv1.weight" in message
    assert "/models/broken.safetensors is broken" in message


def overflowing() -> g.GenDRPix:
    """Finite weights whose activations overflow float16 (largest 65504) but not float32."""
    model = make_tiny()
    with torch.no_grad():
        model.unet.conv_out.weight.fill_(1000.0)
    return model


def test_half_precision_overflow_is_an_error_that_says_to_run_in_float32():
    model = overflowing()
    images = torch.rand(1, 3, 12, 10)
    assert torch.isfinite(g.upscale(model, images)).all()  # fine in float32
    with pytest.raises(g.NonFiniteOutputError, match=r"ran in float16.* float32 \(dtype=torch.float32\)"):
        g.upscale(model, images, dtype=torch.float16)
    assert model.dtype == torch.float32  # put back after the failed run


def test_a_tiled_run_is_checked_too():
    model = broken(**{"unet.conv_out.bias": float("inf")})
    with pytest.raises(g.NonFiniteOutputError, match="the first: unet.conv_out.bias"):
        g.upscale(model, torch.rand(1, 3, 40, 40), g.UpscaleOptions(tile=96, tile_overlap=32))
