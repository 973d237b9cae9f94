"""Cross-checks against the reference implementation (diffusers), installed in CI as a test extra.

They prove that a real diffusers or LDM release checkpoint maps onto our modules and computes the same
function: same keys and shapes for the full sd21 shape, bit-identical outputs for small random models
(in training mode; inference mode is equal up to float rounding, see below).
"""

import pytest
import torch

import gendr_pix as g

diffusers = pytest.importorskip("diffusers")
single_file_utils = pytest.importorskip("diffusers.loaders.single_file_utils")

SD21 = dict(
    in_channels=192, out_channels=192, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    cross_attention_dim=1024, attention_head_dim=[5, 10, 20, 20], use_linear_projection=True,
)


def randomize(module, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return module.eval()


def test_sd21_preset_has_diffusers_keys_and_shapes():
    with torch.device("meta"):
        ref = diffusers.UNet2DConditionModel(**SD21).state_dict()
        ours = g.UNet(g.UNET_PRESETS["sd21"]).state_dict()
    assert ref.keys() == ours.keys()
    assert all(ref[k].shape == ours[k].shape for k in ref)


def test_small_unet_computes_what_diffusers_computes():
    cfg = g.UNetConfig(block_channels=(64, 128, 128), attention_levels=(False, True, True), context_dim=96,
                       head_dim=32)
    ref = randomize(diffusers.UNet2DConditionModel(
        in_channels=192, out_channels=192, block_out_channels=cfg.block_channels, layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=96, attention_head_dim=[2, 4, 4], use_linear_projection=True))
    ours = g.UNet(cfg).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x, t, c = torch.randn(2, 192, 16, 24), torch.tensor([354.0, 354.0]), torch.randn(2, 5, 96)
    with torch.no_grad():
        expected = ref(x, t, encoder_hidden_states=c).sample
        # Inference adds in place; the transformer's residual then keeps its token-major strides, so the
        # next convolutions run in another memory layout and round differently (~2e-6 here).
        torch.testing.assert_close(ours(x, t, c), expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(ours(x, t, c).detach(), expected)  # with autograd: the same ops, bit for bit


def test_our_ldm_export_is_what_diffusers_converts_back():
    cfg = g.UNetConfig(block_channels=(64, 128), attention_levels=(True, False), context_dim=64)
    ours = randomize(g.UNet(cfg))
    ldm = {f"model.diffusion_model.{k}": v for k, v in g.diffusers_to_ldm(ours.state_dict(), cfg).items()}
    converted = single_file_utils.convert_ldm_unet_checkpoint(ldm, dict(
        in_channels=192, out_channels=192, block_out_channels=(64, 128), layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=64, attention_head_dim=[1, 2], use_linear_projection=True))
    sd = ours.state_dict()
    assert converted.keys() == sd.keys()
    assert all(torch.equal(converted[k], sd[k]) for k in sd)


def test_vae16_computes_what_diffusers_autoencoderkl_computes():
    ref = randomize(diffusers.AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 128, 256, 512), latent_channels=16, layers_per_block=2))
    assert sum(p.numel() for p in ref.parameters()) == 57_266_643
    ours = g.VAE().eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        z_ref = ref.encode(x).latent_dist.mean
        assert torch.equal(ours.encode(x), z_ref * ours.config.scaling_factor)
        # (z * s) / s is not always z in floating point: equal up to rounding.
        torch.testing.assert_close(ours.decode(z_ref * ours.config.scaling_factor), ref.decode(z_ref).sample,
                                   atol=1e-5, rtol=1e-5)
