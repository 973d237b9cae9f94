"""User-facing messages of the loader: plain text, our own advice, settings named as the user sees them,
error types that print as plain names in ComfyUI's dialog."""

import ast
from pathlib import Path

import pytest
import torch
from conftest import make_tiny
from safetensors.torch import save_file

import gendr_pix as g
from gendr_pix.cli import main
from gendr_pix.errors import plain
from nodes.model_value import BUNDLED_CHOICE, load_pix_model, loader_ui, parse_loader_settings, resolve_model_path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("\x1b", "[1m", "weights_only=False", "weights_only` set to `False")


def assert_clean(message: str) -> None:
    for bad in FORBIDDEN:
        assert bad not in message, f"{bad!r} in {message!r}"


def comfy_type_name(cls: type) -> str:
    """How ComfyUI's execution.py (0.3.64 and 0.9.2: full_type_name) prints an error's type."""
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


# ---- pickles that need code execution ----

CREATED = []


class Hyperparameters:
    """A class a Lightning-style checkpoint pickles; creating it would append to CREATED."""

    def __init__(self, **kwargs):
        CREATED.append("init")
        self.__dict__.update(kwargs)

    def __setstate__(self, state):
        CREATED.append("setstate")
        self.__dict__.update(state)


def lightning_ckpt(path, model, legacy=False):
    state = {f"model.diffusion_model.{k}": v for k, v in model.unet.state_dict().items()}
    state.update(positive=model.positive.data, negative=model.negative.data)
    torch.save({"state_dict": state, "hyper_parameters": Hyperparameters(lr=1e-4), "epoch": 3}, path,
               _use_new_zipfile_serialization=not legacy)
    return path


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_unsafe_pickle_message_is_ours_complete_and_plain(tmp_path, legacy):
    path = lightning_ckpt(tmp_path / "lightning.ckpt", make_tiny(), legacy)
    with pytest.raises(g.CheckpointError) as err:
        g.load_model(path)
    message = str(err.value)
    assert_clean(message)
    for phrase in (str(path), "also holds Python objects (test_messages.Hyperparameters)",
                   "would run code named by the file, which GenDR-Pix never does",
                   "Get a .safetensors release", "python -m gendr_pix convert", "runs nothing from it."):
        assert phrase in message, message
    assert message.endswith("runs nothing from it.")  # not cut off mid-sentence


def test_ansi_codes_never_reach_a_message(tmp_path):
    err = g.CheckpointError(tmp_path / "x.pt", "torch says \x1b[1mdo this\x1b[0m", fix="\x1b[31mred\x1b[0m")
    assert str(err) == f"{tmp_path / 'x.pt'}: torch says do this. Expected {g.checkpoint.EXPECTED}. red"
    assert plain("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \x1b[1;32mok\x1b[m") == "link ok"


def test_corrupt_pickle_says_so_plainly(tmp_path):
    torch.save({"w": torch.ones(1000)}, tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(g.CheckpointError, match="truncated or corrupt PyTorch file") as err:
        g.load_model(tmp_path / "cut.pt")
    assert_clean(str(err.value))


# ---- convert: the safe way out for such pickles ----

def test_convert_takes_only_the_tensors_and_runs_nothing(tmp_path, capsys):
    model = make_tiny()
    src = lightning_ckpt(tmp_path / "lightning.ckpt", model)
    CREATED.clear()
    settings = ["--set", "head_dim=16", "--set", "norm_groups=8"]
    assert main(["convert", str(src), str(tmp_path / "out.safetensors"), *settings]) == 2
    err = capsys.readouterr().err
    assert "Nothing was written" in err and "--set timestep=354" in err and "--allow-assumed" in err
    assert not (tmp_path / "out.safetensors").exists()
    given = [*settings, "--set", "timestep=354", "--set", "alpha_bar=0.5", "--set", "prediction=epsilon",
             "--set", "scale=4"]
    assert main(["convert", str(src), str(tmp_path / "out.safetensors"), *given]) == 0
    assert CREATED == []  # the pickled object was never created
    converted, warnings = g.load_model(tmp_path / "out.safetensors"), []
    g.load_model(tmp_path / "out.safetensors", warn=warnings.append)
    assert warnings == [] and converted.config.unet == model.config.unet
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(converted(x), model(x))


def test_convert_reads_a_pickled_module(tmp_path):
    model = make_tiny()
    torch.save(model, tmp_path / "whole_model.pt")  # a pickled nn.Module: class names, no plain dict
    with pytest.raises(g.CheckpointError, match="also holds Python objects"):
        g.load_model(tmp_path / "whole_model.pt")
    tensors, _ = g.read_tensors(tmp_path / "whole_model.pt", skip_objects=True)
    assert tensors.keys() == model.state_dict().keys()
    assert all(torch.equal(tensors[k], v) for k, v in model.state_dict().items())


# ---- NaN / inf weights are refused at load ----

@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_file_and_tensors(tmp_path, bad):
    model = make_tiny()
    with torch.no_grad():
        model.unet.conv_out.weight[0, 0, 0, 0] = bad
        model.negative[0, 0, 0] = bad
    g.save_model(model, tmp_path / "broken.safetensors")
    with pytest.raises(g.CheckpointError) as err:
        g.load_model(tmp_path / "broken.safetensors")
    message = str(err.value)
    for phrase in (str(tmp_path / "broken.safetensors"), "2 tensor(s) holding NaN or infinite values",
                   "unet.conv_out.weight (1 values)", "negative (1 values)", "use another copy"):
        assert phrase in message, message


def test_large_finite_weights_are_not_mistaken_for_inf():
    model = make_tiny()
    tensors = {f"unet.{k}": v for k, v in model.unet.state_dict().items()}
    tensors["unet.conv_out.bias"] = torch.full_like(tensors["unet.conv_out.bias"], 3e38)  # sums overflow fp32
    g.check_finite("x", tensors)  # no error


# ---- settings: named as the user gives them ----

@pytest.mark.parametrize(("origin", "run"), [
    ("config_overrides timestp", lambda p: g.load_model(p, config_overrides={"timestp": 50})),
    ("settings 'timestp=50'", lambda p: parse_loader_settings("timestp=50")),
    ("--set 'timestp=50'", lambda p: g.parse_settings(["timestp=50"], origin="--set")),
])
def test_unknown_setting_names_where_it_was_given_and_the_known_ones(tiny_model_file, origin, run):
    with pytest.raises(g.ConfigError) as err:
        run(tiny_model_file)
    message = str(err.value)
    assert message.startswith(origin) and "unknown setting 'timestp'" in message
    assert "prediction, timestep, alpha_bar, head_dim, norm_groups, scale" in message


def test_settings_parse_to_typed_values_and_reject_bad_ones():
    text = "timestep=50\nalpha_bar = 0.95, prediction=v; head_dim=32\n# note\nattention_levels=[false, true]"
    assert g.parse_settings(text, origin="settings") == {
        "timestep": 50.0, "alpha_bar": 0.95, "prediction": "v", "head_dim": 32, "attention_levels": (False, True)}
    for bad, phrase in [("head_dim=3.5", "head_dim takes a whole number"), ("timestep", "expected NAME=VALUE"),
                        ("alpha_bar=nan", "alpha_bar takes a number"), ("mid_attention=2", "true or false")]:
        with pytest.raises(g.ConfigError, match=phrase):
            g.parse_settings(bad, origin="settings")


def test_invalid_value_names_the_setting_as_given(tmp_path):
    model = make_tiny()
    save_file({k: v.contiguous() for k, v in model.unet.state_dict().items()}, tmp_path / "u.safetensors")
    with pytest.raises(g.ConfigError, match=r"^--set alpha_bar=3: alpha_bar must be in \(0, 1\]"):
        g.load_model(tmp_path / "u.safetensors", config_overrides={"alpha_bar": 3, "head_dim": 16, "norm_groups": 8},
                     how_to_set=g.settings.CLI)


def test_cli_warning_names_flags_and_python_warning_names_the_argument(tmp_path, capsys):
    model = make_tiny()
    save_file({k: v.contiguous() for k, v in model.unet.state_dict().items()}, tmp_path / "u.safetensors")
    assert main(["info", str(tmp_path / "u.safetensors"), "--set", "head_dim=16", "--set", "norm_groups=8"]) == 0
    out = capsys.readouterr().out
    assert "warning: GenDR-Pix:" in out and "--set timestep=354 --set alpha_bar=0.5" in out
    assert "the CLI cannot set them" in out  # embeddings
    warnings = []
    g.load_model(tmp_path / "u.safetensors", config_overrides={"head_dim": 16, "norm_groups": 8},
                 warn=warnings.append)
    assert "load_model(path, config_overrides={'prediction': 'epsilon', 'timestep': 354.0" in warnings[0]
    assert "pass positive=/negative= embeddings to upscale()" in warnings[0]


def test_cli_bad_setting_is_a_one_line_error(tmp_path, capsys, tiny_model_file):
    assert main(["upscale", str(tmp_path), "-o", str(tmp_path / "o"), "--model", str(tiny_model_file),
                 "--set", "head=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --set 'head=3': unknown setting 'head'") and err.count("\n") == 1


# ---- the node: its warning, its settings box, its error types ----

def test_loader_node_warning_names_the_settings_box_and_is_its_ui_output(tmp_path):
    model = make_tiny()
    save_file({k: v.contiguous() for k, v in model.unet.state_dict().items()}, tmp_path / "u.safetensors")
    pix = load_pix_model(tmp_path / "u.safetensors", torch.float32,
                         parse_loader_settings("head_dim=16\nnorm_groups=8\ntimestep=100"))
    assert pix.network.config.timestep == 100.0
    for phrase in ("u.safetensors does not store all its settings", "alpha_bar=0.5", "prediction=epsilon",
                   "Model Loader's settings box, one per line: prediction=epsilon, alpha_bar=0.5",
                   "GenDR-Pix Guidance's positive and negative inputs"):
        assert phrase in pix.warning, pix.warning
    assert "timestep" not in pix.warning and "head_dim" not in pix.warning
    assert_clean(pix.warning)
    assert loader_ui(pix) == {"gendr_pix_warning": [pix.warning]}


def test_self_describing_file_gives_no_node_warning(tiny_model_file):
    pix = load_pix_model(tiny_model_file, torch.float32, {})
    assert pix.warning == "" and loader_ui(pix) == {"gendr_pix_warning": [""]}


def test_error_types_print_as_plain_names_in_comfyui():
    for cls in (g.CheckpointError, g.ConfigError, g.ImageFileError):
        assert comfy_type_name(cls) == f"gendr_pix.{cls.__name__}"
        assert getattr(g, cls.__name__) is cls  # the printed name is where users import it from
    with pytest.raises(FileNotFoundError) as err:
        resolve_model_path("gone.safetensors", lambda name: None)
    assert comfy_type_name(type(err.value)) == "FileNotFoundError"
    with pytest.raises(FileNotFoundError) as err:
        resolve_model_path(BUNDLED_CHOICE, lambda name: None, bundled=Path("/nonexistent/model.safetensors"))
    assert comfy_type_name(type(err.value)) == "FileNotFoundError"


def test_node_layer_defines_no_exception_types():
    """A pack's module is named by its folder path in ComfyUI; an error type defined there prints as
    `/path/to/custom_nodes/pack.nodes.module.Error`. Node code raises builtin or gendr_pix types."""
    for path in (ROOT / "nodes").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                assert not any(b.endswith(("Error", "Exception")) for b in bases), f"{path.name}: {node.name}"
