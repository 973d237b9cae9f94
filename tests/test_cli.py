"""The CLI: upscale files and folders; one-line errors with exit code 2."""

import pytest
import torch
from conftest import make_tiny
from PIL import Image, ImageCms

import gendr_pix as g
from gendr_pix.cli import main
from gendr_pix.imageio import load_image, save_image


@pytest.fixture
def setup(tmp_path):
    model = tmp_path / "tiny.safetensors"
    g.save_model(make_tiny(), model)
    inputs = tmp_path / "in"
    inputs.mkdir()
    save_image(torch.rand(1, 3, 12, 20), inputs / "a.png")
    save_image(torch.rand(1, 4, 9, 7), inputs / "b.png")
    return tmp_path, model, inputs


def test_upscale_a_folder(setup, capsys):
    tmp, model, inputs = setup
    rc = main(["upscale", str(inputs), "-o", str(tmp / "out"), "--model", str(model), "--scale", "3",
               "--ensemble", "2", "--guidance", "1.5", "--padcfg", "--color-fix", "wavelet"])
    assert rc == 0
    a = Image.open(tmp / "out" / "a_gendrpix.png")
    b = Image.open(tmp / "out" / "b_gendrpix.png")
    assert a.size == (60, 36) and a.mode == "RGB"
    assert b.size == (21, 27) and b.mode == "RGBA"
    assert "done: 2 image(s)" in capsys.readouterr().err


def test_single_file_output_name_and_same_result_as_the_api(setup):
    tmp, model, inputs = setup
    assert main(["upscale", str(inputs / "a.png"), "-o", str(tmp / "a4.png"), "--model", str(model)]) == 0
    api = g.upscale(g.load_model(model), load_image(inputs / "a.png"), g.UpscaleOptions(scale=4))
    saved = load_image(tmp / "a4.png")
    assert (saved - api).abs().max() <= 0.5 / 255 + 1e-6


def test_grid_filter_flag_alone_takes_the_default_window(setup):
    tmp, model, inputs = setup
    assert main(["upscale", str(inputs / "a.png"), "-o", str(tmp / "f.png"), "--model", str(model),
                 "--grid-filter"]) == 0
    options = g.UpscaleOptions(scale=4, grid_filter=g.GRID_FILTER_WINDOW)
    api = g.upscale(g.load_model(model), load_image(inputs / "a.png"), options)
    assert (load_image(tmp / "f.png") - api).abs().max() <= 0.5 / 255 + 1e-6
    plain = g.upscale(g.load_model(model), load_image(inputs / "a.png"), g.UpscaleOptions(scale=4))
    assert (api - plain).abs().max() > 2 / 255


@pytest.mark.parametrize("args, message", [
    (["missing.png"], "missing.png: no such file or folder"),
    (["in/a.png", "--model", "in/a.png"], "neither safetensors nor a PyTorch pickle"),
    (["broken.png"], "cannot read as an image"),
    (["in/a.png", "--scale", "12"], "scale must be in [1, 8]"),
    (["in/a.png", "--tile", "64", "--tile-overlap", "64"], "--tile (64) must be larger than --tile-overlap (64)"),
    (["in/big.png", "--tile", "128", "--tile-overlap", "120"], "--tile 128 is too small for --tile-overlap 120"),
    (["in/a.png", "--grid-filter", "20"], "grid filter window must be 0 (off) or a multiple of 8"),
])
def test_errors_are_one_line(setup, capsys, monkeypatch, args, message):
    tmp, model, _ = setup
    monkeypatch.chdir(tmp)
    (tmp / "broken.png").write_bytes(b"\x89PNG not really")
    save_image(torch.rand(1, 3, 64, 64), tmp / "in" / "big.png")
    full = ["upscale", *args, "-o", str(tmp / "o")]
    if "--model" not in args:
        full += ["--model", str(model)]
    assert main(full) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_without_a_model_it_says_how_to_pass_one(setup, capsys, monkeypatch):
    tmp, _, inputs = setup
    monkeypatch.setattr("gendr_pix.cli_upscale.DEFAULT_MODEL", tmp / "not-bundled.safetensors")
    assert main(["upscale", str(inputs / "a.png"), "-o", str(tmp / "o")]) == 2
    assert "--model PATH" in capsys.readouterr().err


def test_existing_outputs_are_not_overwritten(setup, capsys):
    tmp, model, inputs = setup
    (tmp / "a4.png").write_bytes(b"keep")
    assert main(["upscale", str(inputs / "a.png"), "-o", str(tmp / "a4.png"), "--model", str(model)]) == 2
    assert (tmp / "a4.png").read_bytes() == b"keep"
    assert "--overwrite" in capsys.readouterr().err


def test_bad_choice_is_rejected_by_argparse(setup):
    tmp, model, inputs = setup
    with pytest.raises(SystemExit) as e:
        main(["upscale", str(inputs), "-o", str(tmp), "--ensemble", "3"])
    assert e.value.code == 2


def test_info_describes_a_checkpoint(setup, capsys):
    _, model, _ = setup
    assert main(["info", str(model), "--keys"]) == 0
    out = capsys.readouterr().out
    assert "loads as GenDR-Pix" in out and "unet.conv_in.weight  (32, 192, 3, 3)" in out


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_output_keeps_the_input_colour_profile(setup, suffix):
    tmp, model, _ = setup
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src, dst = tmp / f"tagged{suffix}", tmp / f"tagged_x4{suffix}"
    Image.new("RGB", (12, 10), (200, 40, 90)).save(src, icc_profile=profile)
    assert main(["upscale", str(src), "-o", str(dst), "--model", str(model)]) == 0
    assert Image.open(dst).info.get("icc_profile") == profile
    assert main(["upscale", str(tmp / "in" / "a.png"), "-o", str(tmp / "plain_x4.png"), "--model", str(model)]) == 0
    assert "icc_profile" not in Image.open(tmp / "plain_x4.png").info


def last_error_line(capsys) -> str:
    """The error line; a progress line may come before it."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: ") and not any(line.startswith("Traceback") for line in lines)
    return lines[-1]


def test_nan_weights_are_a_one_line_error_naming_the_file(setup, capsys):
    tmp, _, inputs = setup
    model = make_tiny()
    with torch.no_grad():
        model.unet.conv_in.weight.view(-1)[0] = float("nan")
    g.save_model(model, tmp / "nan.safetensors")
    model_file = str(tmp / "nan.safetensors")
    assert main(["upscale", str(inputs / "a.png"), "-o", str(tmp / "o.png"), "--model", model_file]) == 2
    line = last_error_line(capsys)
    assert "NaN" in line and "nan.safetensors" in line
    assert not (tmp / "o.png").exists()


def test_half_precision_overflow_says_to_use_dtype_fp32(setup, capsys):
    tmp, _, inputs = setup
    model = make_tiny()
    with torch.no_grad():
        model.unet.conv_out.weight.fill_(1000.0)  # finite, but float16 activations overflow
    g.save_model(model, tmp / "loud.safetensors")
    args = ["upscale", str(inputs / "a.png"), "-o", str(tmp / "o.png"), "--model", str(tmp / "loud.safetensors")]
    assert main([*args, "--dtype", "fp16"]) == 2
    line = last_error_line(capsys)
    assert "ran in float16" in line and line.endswith("Run it in float32 (--dtype fp32).")
    assert main([*args, "--dtype", "fp32"]) == 0
