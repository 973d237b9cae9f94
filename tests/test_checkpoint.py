"""Checkpoint formats: our own, diffusers and LDM layouts, and one clear error for everything else."""

import json
import struct

import pytest
import torch
from conftest import make_random, make_tiny
from safetensors.torch import save_file

import gendr_pix as g
from gendr_pix import checkpoint, layouts

# Small, but with SD2.1's head_dim (64) and GroupNorm groups (32): what a foreign file is assumed to use.
SD_LIKE = g.UNetConfig(block_channels=(64, 128), layers_per_block=2, attention_levels=(False, True),
                       context_dim=64, transformer_depth=1)


def random_model(unet=SD_LIKE, seed=0, **config):
    return make_random(unet, seed, **config)


def outputs(model, seed=1):
    torch.manual_seed(seed)
    x = torch.rand(1, 3, 40, 56) * 2 - 1
    ctx = torch.randn(1, 7, model.config.unet.context_dim)
    with torch.no_grad():
        return model(x, ctx)


def test_our_format_round_trips(tmp_path):
    model = random_model(prediction="v", timestep=250.0, alpha_bar=0.6, scale=2.0, description="test")
    path = tmp_path / "m.safetensors"
    g.save_model(model, path, dtype=None)
    loaded = g.load_model(path)
    assert loaded.config == model.config
    assert torch.equal(loaded.positive, model.positive) and torch.equal(loaded.negative, model.negative)
    assert torch.equal(outputs(loaded), outputs(model))


def test_tiny_preset_round_trips_with_its_head_dim_and_groups(tmp_path):
    model = make_tiny()
    g.save_model(model, tmp_path / "t.safetensors", dtype=None)
    assert torch.equal(outputs(g.load_model(tmp_path / "t.safetensors")), outputs(model))


def _diffusers(model):
    return {k: v.clone() for k, v in model.unet.state_dict().items()}


def _ldm(model, prefix):
    return {prefix + k: v.clone() for k, v in g.diffusers_to_ldm(model.unet.state_dict(), model.config.unet).items()}


EXPORTS = {
    "diffusers.safetensors": lambda m: _diffusers(m),
    "diffusers_prefixed.safetensors": lambda m: {f"unet.{k}": v for k, v in _diffusers(m).items()},
    "ldm.safetensors": lambda m: _ldm(m, ""),
    "ldm_prefixed.safetensors": lambda m: _ldm(m, "model.diffusion_model."),
    "ldm.ckpt": lambda m: {"state_dict": _ldm(m, "model.diffusion_model."), "global_step": torch.tensor(7)},
    "diffusers.bin": lambda m: _diffusers(m),
}


@pytest.mark.parametrize("name", list(EXPORTS))
def test_foreign_layouts_load_to_identical_outputs(tmp_path, name):
    model = random_model()
    tensors = EXPORTS[name](model)
    path = tmp_path / name
    if name.endswith(".safetensors"):
        save_file(tensors, path)
    else:
        torch.save(tensors, path)
    loaded = g.load_model(path)
    assert loaded.config.unet == model.config.unet
    assert torch.equal(outputs(loaded), outputs(model))


def test_ldm_layout_key_names_match_stable_diffusion():
    with torch.device("meta"):
        unet = g.UNet(g.UNET_PRESETS["sd21"])
    keys = set(g.diffusers_to_ldm(unet.state_dict(), unet.config))
    for key in ["input_blocks.0.0.weight", "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
                "input_blocks.3.0.op.weight", "input_blocks.11.0.out_layers.3.weight",
                "middle_block.1.proj_in.weight", "middle_block.2.emb_layers.1.weight",
                "output_blocks.2.1.conv.weight", "output_blocks.5.2.conv.weight",
                "output_blocks.3.0.skip_connection.weight",
                "time_embed.0.weight", "out.0.weight", "out.2.bias"]:
        assert key in keys, key


def test_overrides_set_what_foreign_files_cannot_declare(tmp_path):
    model = make_tiny()  # head_dim 16, 8 groups: not readable from shapes
    save_file(_diffusers(model), tmp_path / "u.safetensors")
    loaded = g.load_model(tmp_path / "u.safetensors", config_overrides={"unet": {"head_dim": 16, "norm_groups": 8}})
    assert loaded.config.unet == model.config.unet
    assert torch.equal(outputs(loaded), outputs(model))


def test_loader_does_not_mutate_or_keep_caller_state(tmp_path):
    model = random_model()
    tensors = _ldm(model, "model.diffusion_model.")
    before = dict(tensors)
    save_file(tensors, tmp_path / "l.safetensors")
    layouts.strip_prefixes(tensors)
    g.ldm_to_diffusers(layouts.strip_prefixes(tensors))
    assert tensors.keys() == before.keys()


# ---- everything else: one error type naming the file, what it looks like, what was expected ----

def _expect_error(path, *phrases):
    with pytest.raises(g.CheckpointError) as info:
        g.load_model(path)
    message = str(info.value)
    assert str(path) in message and "Expected" in message
    for phrase in phrases:
        assert phrase in message, message
    return info.value


def test_error_full_sd_checkpoint_with_vae(tmp_path):
    tensors = _ldm(random_model(), "model.diffusion_model.")
    tensors["first_stage_model.encoder.conv_in.weight"] = torch.zeros(128, 3, 3, 3)
    tensors["cond_stage_model.model.token_embedding.weight"] = torch.zeros(10, 4)
    save_file(tensors, tmp_path / "sd21.safetensors")
    _expect_error(tmp_path / "sd21.safetensors", "full Stable Diffusion checkpoint")


def test_error_esrgan(tmp_path):
    tensors = {"conv_first.weight": torch.zeros(64, 3, 3, 3), "body.0.rdb1.conv1.weight": torch.zeros(32, 64, 3, 3)}
    torch.save({"params_ema": tensors}, tmp_path / "RealESRGAN_x4plus.pth")
    _expect_error(tmp_path / "RealESRGAN_x4plus.pth", "ESRGAN")


def test_error_truncated_safetensors(tmp_path):
    g.save_model(make_tiny(), tmp_path / "full.safetensors")
    data = (tmp_path / "full.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    _expect_error(tmp_path / "cut.safetensors", "truncated or corrupt")


def test_error_not_a_checkpoint(tmp_path):
    (tmp_path / "model.safetensors").write_text("<html>404 not found</html>")
    _expect_error(tmp_path / "model.safetensors", "neither safetensors nor a PyTorch pickle")


def test_error_wrong_channel_count(tmp_path):
    import dataclasses

    latent = g.UNet(dataclasses.replace(SD_LIKE, in_channels=4, out_channels=4))
    save_file(latent.state_dict(), tmp_path / "latent_unet.safetensors")
    _expect_error(tmp_path / "latent_unet.safetensors", "latent SD1.x/2.x UNet with 4 input channels")


class NotATensor:
    pass


def test_error_unsafe_pickle_is_never_executed(tmp_path):
    torch.save({"conv_in.weight": NotATensor()}, tmp_path / "evil.pt")
    _expect_error(tmp_path / "evil.pt", "also holds Python objects (test_checkpoint.NotATensor)", "never does")


def test_error_metadata_disagrees_with_tensors(tmp_path):
    model = random_model()
    tensors = {f"unet.{k}": v for k, v in _diffusers(model).items()}
    tensors.update(positive=model.positive.data, negative=model.negative.data)
    wrong = g.ModelConfig(unet=g.UNetConfig(block_channels=(64, 256), attention_levels=(False, True), context_dim=64))
    header = {"format_version": 1, "architecture": "gendr-pix", "config": wrong.to_dict()}
    save_file(tensors, tmp_path / "lie.safetensors", metadata={"gendr_pix": json.dumps(header)})
    _expect_error(tmp_path / "lie.safetensors", "disagrees", "block_channels")


def test_error_missing_tensors(tmp_path):
    tensors = _diffusers(random_model())
    del tensors["mid_block.resnets.1.conv2.weight"]
    save_file(tensors, tmp_path / "partial.safetensors")
    _expect_error(tmp_path / "partial.safetensors", "missing", "mid_block.resnets.1.conv2.weight")


def test_error_newer_format_version(tmp_path):
    g.save_model(make_tiny(), tmp_path / "m.safetensors")
    tensors, meta = g.read_tensors(tmp_path / "m.safetensors")
    header = json.loads(meta["gendr_pix"]) | {"format_version": 99}
    save_file(tensors, tmp_path / "future.safetensors", metadata={"gendr_pix": json.dumps(header)})
    _expect_error(tmp_path / "future.safetensors", "format version 99")


def test_error_missing_file(tmp_path):
    _expect_error(tmp_path / "nope.safetensors", "no such file")


def test_error_unrecognised_state_dict(tmp_path):
    save_file({"weight": torch.zeros(3), "bias": torch.zeros(3)}, tmp_path / "linear.safetensors")
    _expect_error(tmp_path / "linear.safetensors", "unrecognised state dict")


def test_failed_save_leaves_existing_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "keep.safetensors"
    g.save_model(make_tiny(seed=1), path)
    original = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        g.save_model(make_tiny(seed=2), path)
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["keep.safetensors"]


def test_safetensors_sniffing_ignores_the_file_name(tmp_path):
    g.save_model(make_tiny(), tmp_path / "weights.pth")  # safetensors content, misleading suffix
    assert g.load_model(tmp_path / "weights.pth").config.unet == g.UNET_PRESETS["tiny"]
    assert struct.unpack("<Q", (tmp_path / "weights.pth").read_bytes()[:8])[0] > 0


def test_saved_files_get_ordinary_permissions(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        g.save_model(make_tiny(), tmp_path / "new.safetensors")
    finally:
        os.umask(old)
    assert (tmp_path / "new.safetensors").stat().st_mode & 0o777 == 0o644
    (tmp_path / "new.safetensors").chmod(0o640)
    g.save_model(make_tiny(seed=1), tmp_path / "new.safetensors")  # replacing keeps the file's mode
    assert (tmp_path / "new.safetensors").stat().st_mode & 0o777 == 0o640
