"""Foreign releases: diffusers folders (UNet and pipeline), LDM .ckpt, bare copies of the bundled model.

Each loads with the right settings or warns naming every value it assumed; given those values it
computes exactly what the original does.
"""

import json

import pytest
import torch
from conftest import make_random
from safetensors.torch import save_file

import gendr_pix as g

# head_dim 32 and 16 GroupNorm groups differ from the guesses (64, 32): only a config can tell them.
SHAPE = g.UNetConfig(block_channels=(64, 128), layers_per_block=2, attention_levels=(False, True),
                     context_dim=64, head_dim=32, norm_groups=16)
GUESSED = ("prediction=epsilon", "timestep=354", "alpha_bar=0.5", "head_dim=64", "norm_groups=32", "scale=4")


def random_model(unet=SHAPE, seed=0, **config):
    return make_random(unet, seed, **config)


def outputs(model, seed=1):
    torch.manual_seed(seed)
    x = torch.rand(1, 3, 40, 56) * 2 - 1
    with torch.no_grad():
        return model(x, "positive"), model(x, torch.randn(1, 7, model.config.unet.context_dim))


def same_outputs(a, b):
    return all(torch.equal(x, y) for x, y in zip(outputs(a), outputs(b)))


def unet_config_json(cfg: g.UNetConfig, **extra):
    """What diffusers' save_pretrained writes for this shape (the keys that matter)."""
    heads = [w // cfg.head_dim for w in cfg.block_channels]
    return {
        "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.42.1",
        "in_channels": cfg.in_channels, "out_channels": cfg.out_channels,
        "block_out_channels": list(cfg.block_channels), "layers_per_block": cfg.layers_per_block,
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in cfg.attention_levels],
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(cfg.attention_levels)],
        "mid_block_type": "UNetMidBlock2DCrossAttn", "cross_attention_dim": cfg.context_dim,
        "attention_head_dim": heads, "num_attention_heads": None, "use_linear_projection": cfg.linear_projection,
        "norm_num_groups": cfg.norm_groups, "norm_eps": 1e-5, "act_fn": "silu", "flip_sin_to_cos": True,
        "freq_shift": 0, "transformer_layers_per_block": 1, "upcast_attention": False, "sample_size": 64,
        **extra,
    }


def write_unet_folder(folder, model, **config_extra):
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.unet.state_dict().items()},
              folder / "diffusion_pytorch_model.safetensors")
    (folder / "config.json").write_text(json.dumps(unet_config_json(model.config.unet, **config_extra)))
    return folder


def load_warned(path, **kwargs):
    warnings = []
    model = g.load_model(path, warn=warnings.append, **kwargs)
    return model, " ".join(warnings)


# ---- diffusers UNet folder: config.json gives head size and groups ----

@pytest.mark.parametrize("pick", ["folder", "weights file"])
def test_diffusers_unet_folder_reads_head_size_and_groups_from_config_json(tmp_path, pick):
    model = random_model()
    folder = write_unet_folder(tmp_path / "release", model)
    loaded, warning = load_warned(folder if pick == "folder" else folder / "diffusion_pytorch_model.safetensors")
    assert loaded.config.unet == model.config.unet
    # Shape and head size come from the folder; only the one-step settings and embeddings are guessed.
    for phrase in ("prediction=epsilon", "timestep=354", "alpha_bar=0.5", "scale=4", "positive/negative"):
        assert phrase in warning, warning
    assert "head_dim" not in warning and "norm_groups" not in warning
    assert "config_overrides=" in warning
    same = g.load_model(folder, config_overrides={"prediction": "epsilon", "timestep": 354, "alpha_bar": 0.5})
    assert torch.equal(outputs(same)[1], outputs(loaded)[1])


def test_diffusers_folder_weights_equal_the_original_model(tmp_path):
    model = random_model(timestep=354.0, alpha_bar=0.5)
    folder = write_unet_folder(tmp_path / "u", model)
    loaded = g.load_model(folder)
    with torch.no_grad():
        loaded.positive.copy_(model.positive)
    assert same_outputs(loaded, model)


def test_pipeline_folder_reads_prediction_and_schedule(tmp_path):
    model = random_model()
    write_unet_folder(tmp_path / "pipe" / "unet", model)
    (tmp_path / "pipe" / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    (tmp_path / "pipe" / "scheduler").mkdir()
    (tmp_path / "pipe" / "scheduler" / "scheduler_config.json").write_text(json.dumps({
        "_class_name": "DDPMScheduler", "prediction_type": "v_prediction", "beta_schedule": "scaled_linear",
        "beta_start": 0.00085, "beta_end": 0.012, "num_train_timesteps": 1000}))
    loaded, warning = load_warned(tmp_path / "pipe")
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float32) ** 2
    alphas_cumprod = torch.cumprod(1 - betas, 0)
    assert loaded.config.prediction == "v"
    assert loaded.config.alpha_bar == pytest.approx(float(alphas_cumprod[354]), abs=1e-7)
    assert "timestep=354" in warning and "prediction" not in warning and "alpha_bar" not in warning
    # The timestep is the one setting left; alpha_bar follows it along the schedule.
    later = g.load_model(tmp_path / "pipe", config_overrides={"timestep": 999})
    assert later.config.alpha_bar == pytest.approx(float(alphas_cumprod[999]), abs=1e-7)


def test_real_diffusers_save_pretrained_folder_loads_and_computes_the_same(tmp_path):
    diffusers = pytest.importorskip("diffusers")
    ref = diffusers.UNet2DConditionModel(**{k: v for k, v in unet_config_json(SHAPE).items() if not k.startswith("_")})
    ref = ref.eval()
    ref.save_pretrained(tmp_path / "pipe" / "unet")
    diffusers.DDIMScheduler(prediction_type="sample").save_pretrained(tmp_path / "pipe" / "scheduler")
    loaded, warning = load_warned(tmp_path / "pipe")
    assert loaded.config.unet == SHAPE and loaded.config.prediction == "sample"
    assert "head_dim" not in warning and "prediction" not in warning
    x, t, c = torch.randn(1, 192, 16, 16), torch.tensor([354.0]), torch.randn(1, 5, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.unet(x, t, c), ref(x, t, encoder_hidden_states=c).sample,
                                   atol=1e-5, rtol=1e-5)


def test_config_json_that_disagrees_with_the_tensors_names_both(tmp_path):
    folder = write_unet_folder(tmp_path / "u", random_model(), block_out_channels=[64, 256])
    with pytest.raises(g.CheckpointError) as err:
        g.load_model(folder)
    message = str(err.value)
    assert "config.json" in message and "block_out_channels" in message
    assert "[64, 256]" in message and "[64, 128]" in message


@pytest.mark.parametrize(("extra", "phrase"), [
    ({"resnet_time_scale_shift": "scale_shift"}, "resnet_time_scale_shift = 'scale_shift'"),
    ({"attention_head_dim": 8}, "attention heads of different sizes"),  # SD1.x style: 8 heads everywhere
    ({"up_block_types": ["UpBlock2D", "UpBlock2D"]}, "the mirror of down_block_types"),
    ({"_class_name": "UNet2DModel"}, "diffusers' UNet2DModel"),
])
def test_config_json_for_a_network_we_do_not_compute_is_refused(tmp_path, extra, phrase):
    model = random_model(g.UNetConfig(block_channels=(64, 128), attention_levels=(True, True), context_dim=64,
                                      head_dim=32, norm_groups=16))
    folder = write_unet_folder(tmp_path / "u", model, **extra)
    with pytest.raises(g.CheckpointError, match="config.json") as err:
        g.load_model(folder)
    assert phrase in str(err.value)


def test_folder_without_weights_names_what_it_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(g.CheckpointError, match="diffusion_pytorch_model.safetensors"):
        g.load_model(tmp_path / "empty")


# ---- LDM .ckpt: no config, but LDM keeps its noise schedule in the file ----

def test_ldm_ckpt_warns_and_takes_alpha_bar_from_its_stored_schedule(tmp_path):
    model = random_model()
    ldm = {f"model.diffusion_model.{k}": v for k, v in g.diffusers_to_ldm(model.unet.state_dict(), SHAPE).items()}
    alphas_cumprod = torch.linspace(0.999, 0.01, 1000, dtype=torch.float64).float()
    ldm["alphas_cumprod"] = alphas_cumprod
    ldm["cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"] = torch.zeros(8, 4)
    torch.save({"state_dict": ldm, "global_step": 1000}, tmp_path / "gendr.ckpt")
    given = {"head_dim": 32, "norm_groups": 16}
    loaded, warning = load_warned(tmp_path / "gendr.ckpt", config_overrides=given)
    assert loaded.config.unet == SHAPE
    assert loaded.config.alpha_bar == pytest.approx(float(alphas_cumprod[354]))
    for phrase in ("prediction=epsilon", "timestep=354", "scale=4", "positive/negative"):
        assert phrase in warning, warning
    assert "alpha_bar" not in warning and "head_dim" not in warning


def test_ldm_ckpt_without_settings_names_every_guess(tmp_path):
    model = random_model(g.UNetConfig(block_channels=(64, 128), attention_levels=(False, True), context_dim=64))
    ldm = {f"model.diffusion_model.{k}": v for k, v in g.diffusers_to_ldm(model.unet.state_dict(),
                                                                            model.config.unet).items()}
    torch.save({"state_dict": ldm}, tmp_path / "m.ckpt")
    _, warning = load_warned(tmp_path / "m.ckpt")
    for phrase in (*GUESSED, "positive/negative"):
        assert phrase in warning, warning


def test_assumed_head_size_that_cannot_fit_says_what_to_set(tmp_path):
    model = random_model(g.UNetConfig(block_channels=(48, 96), attention_levels=(False, True), context_dim=32,
                                      head_dim=16, norm_groups=16))
    save_file({k: v.contiguous() for k, v in model.unet.state_dict().items()}, tmp_path / "u.safetensors")
    with pytest.raises(g.CheckpointError) as err:
        g.load_model(tmp_path / "u.safetensors")
    message = str(err.value)
    assert "head_dim" in message and "norm_groups" in message and "config_overrides=" in message
    assert g.load_model(tmp_path / "u.safetensors", config_overrides={"head_dim": 16, "norm_groups": 16})


# ---- the bundled model saved without its metadata ----

@pytest.fixture(scope="module")
def bundled():
    return g.load_default_model()


@pytest.fixture(scope="module")
def bare_copies(bundled, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bare")
    state = {k: v.to(torch.float16).contiguous() for k, v in bundled.state_dict().items()}
    torch.save(state, folder / "gendr-pix-small-x4.ckpt")
    save_file(state, folder / "gendr-pix-small-x4.safetensors")
    return [folder / "gendr-pix-small-x4.ckpt", folder / "gendr-pix-small-x4.safetensors"]


TRAINED_WITH = {"timestep": 50, "alpha_bar": 0.95, "head_dim": 32}  # the bundled model's metadata


@pytest.fixture(scope="module")
def bundled_output(bundled):
    return _upscale(bundled)


def _upscale(model):
    torch.manual_seed(0)
    image = torch.rand(1, 3, 16, 16)  # 64 x 64 out: one grid multiple of the small model
    return g.upscale(model, image, g.UpscaleOptions(scale=4))


@pytest.mark.parametrize("index", [0, 1], ids=["ckpt", "safetensors"])
def test_bare_bundled_model_warns_naming_every_guess(bare_copies, bundled_output, index):
    loaded, warning = load_warned(bare_copies[index])
    for phrase in GUESSED:
        assert phrase in warning, warning
    assert "positive/negative" not in warning  # the embeddings are stored
    assert not torch.allclose(_upscale(loaded), bundled_output, atol=1e-2)  # the guesses are wrong for it


@pytest.mark.parametrize("index", [0, 1], ids=["ckpt", "safetensors"])
def test_bare_bundled_model_with_its_settings_gives_the_same_pixels(bundled, bare_copies, bundled_output, index):
    loaded, warning = load_warned(bare_copies[index], config_overrides=TRAINED_WITH)
    assert loaded.config.unet == bundled.config.unet
    assert (loaded.config.timestep, loaded.config.alpha_bar) == (50.0, 0.95)
    assert "timestep" not in warning and "head_dim" not in warning
    assert torch.equal(_upscale(loaded), bundled_output)


def test_settings_given_for_a_self_describing_file_replace_its_own(tmp_path, caplog):
    model = random_model(timestep=50.0)
    g.save_model(model, tmp_path / "m.safetensors", dtype=None)
    with caplog.at_level("INFO", logger="gendr_pix.checkpoint"):
        loaded, warning = load_warned(tmp_path / "m.safetensors", config_overrides={"timestep": 60})
    assert loaded.config.timestep == 60.0 and warning == ""
    assert "timestep 50.0 -> 60.0" in caplog.text
