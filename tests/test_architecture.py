"""Shapes and parameter counts of the networks; the benchmark's honesty depends on these."""

import dataclasses

import pytest
import torch

import gendr_pix as g


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_sd21_preset_matches_gendr_pix_size():
    with torch.device("meta"):
        unet = g.UNet(g.UNET_PRESETS["sd21"])
    # The paper: 866M parameters; within 1%.
    assert abs(count(unet) - 866e6) / 866e6 < 0.01
    assert count(unet) == 866_993_792


def test_sd21_topology_with_4_channels_is_stable_diffusion_2_1():
    # SD2.1's published UNet has 865,910,724 parameters: same topology, 4 latent channels.
    with torch.device("meta"):
        unet = g.UNet(dataclasses.replace(g.UNET_PRESETS["sd21"], in_channels=4, out_channels=4))
    assert count(unet) == 865_910_724
    assert len(unet.state_dict()) == 686  # SD2.1's UNet key count


def test_vae16_has_the_shape_of_ostris_vae_kl_f8_d16():
    with torch.device("meta"):
        vae = g.VAE()
    assert count(vae) == 57_266_643  # as published for ostris/vae-kl-f8-d16


def test_vae_round_trip_shapes():
    vae = g.VAE(g.VAEConfig(block_channels=(32, 32, 64, 64), layers_per_block=1)).eval()
    x = torch.rand(2, 3, 64, 48) * 2 - 1
    z = vae.encode(x)
    assert z.shape == (2, 16, 8, 6)
    assert vae.decode(z).shape == x.shape


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_unet_forward_shape(preset):
    cfg = g.UNET_PRESETS[preset]
    unet = g.UNet(cfg).eval()
    m = cfg.grid_multiple
    x = torch.randn(1, 192, 2 * m, 3 * m)
    with torch.no_grad():
        y = unet(x, torch.tensor([354.0]), torch.randn(1, 5, cfg.context_dim))
    assert y.shape == x.shape


def test_model_is_a_pixel_unshuffle_unet_pixel_shuffle_sandwich(tiny):
    # Direct recomputation of the documented pipeline for an input that needs no padding.
    x = torch.rand(1, 3, 32, 48) * 2 - 1
    z = torch.nn.functional.pixel_unshuffle(x, 8)
    t = torch.full((1,), tiny.config.timestep)
    eps = tiny.unet(z, t, tiny.positive)
    a = tiny.config.alpha_bar
    expected = torch.nn.functional.pixel_shuffle((z - (1 - a) ** 0.5 * eps) / a**0.5, 8)
    with torch.no_grad():
        torch.testing.assert_close(tiny(x, "positive"), expected)


@pytest.mark.parametrize("prediction", ["epsilon", "v", "sample"])
def test_prediction_conversions_recover_x0(prediction):
    a = 0.3
    x0, eps = torch.randn(4), torch.randn(4)
    x_t = a**0.5 * x0 + (1 - a) ** 0.5 * eps
    out = {"epsilon": eps, "v": a**0.5 * eps - (1 - a) ** 0.5 * x0, "sample": x0}[prediction]
    from gendr_pix.model import prediction_to_sample

    torch.testing.assert_close(prediction_to_sample(x_t, out, prediction, a), x0)


def test_config_validation_names_the_problem():
    with pytest.raises(g.ConfigError, match="attention_levels has 1 entries"):
        g.UNetConfig(block_channels=(32, 64), attention_levels=(True,))
    with pytest.raises(g.ConfigError, match="192 in/out channels"):
        g.ModelConfig(unet=dataclasses.replace(g.UNET_PRESETS["tiny"], in_channels=4))
    with pytest.raises(g.ConfigError, match="prediction"):
        g.ModelConfig(prediction="x0")


def test_config_dict_round_trip():
    cfg = g.ModelConfig(unet=g.UNET_PRESETS["small"], prediction="v", timestep=500, alpha_bar=0.4, scale=2)
    assert g.ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(g.ConfigError, match="unknown UNetConfig fields: bogus"):
        g.ModelConfig.from_dict({**cfg.to_dict(), "unet": {**cfg.to_dict()["unet"], "bogus": 1}})
