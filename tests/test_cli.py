"""The CLI: upscale files and folders; one-line errors with exit code 2, one `failed:` line per bad file
in a batch that goes on (exit code 1)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny
from images16 import png16, tiff16
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
                 "--grid-filter", "--antiring", "0"]) == 0
    options = g.UpscaleOptions(scale=4, grid_filter=g.GRID_FILTER_WINDOW, antiring=0.0)
    api = g.upscale(g.load_model(model), load_image(inputs / "a.png"), options)
    assert (load_image(tmp / "f.png") - api).abs().max() <= 0.5 / 255 + 1e-6
    plain = g.upscale(g.load_model(model), load_image(inputs / "a.png"), g.UpscaleOptions(scale=4, **g.PLAIN))
    assert (api - plain).abs().max() > 2 / 255


def test_artifact_filters_are_on_by_default_and_zero_turns_them_off(setup):
    tmp, model, inputs = setup
    args = ["upscale", str(inputs / "a.png"), "--model", str(model)]
    assert main([*args, "-o", str(tmp / "default.png")]) == 0
    assert main([*args, "-o", str(tmp / "plain.png"), "--grid-filter", "0", "--antiring", "0"]) == 0
    assert main([*args, "-o", str(tmp / "half.png"), "--antiring", "0.5"]) == 0
    image, net = load_image(inputs / "a.png"), g.load_model(model)
    for name, options in [("default", g.UpscaleOptions()), ("plain", g.UpscaleOptions(**g.PLAIN)),
                          ("half", g.UpscaleOptions(antiring=0.5))]:
        assert (load_image(tmp / f"{name}.png") - g.upscale(net, image, options)).abs().max() <= 0.5 / 255 + 1e-6
    assert (load_image(tmp / "default.png") - load_image(tmp / "plain.png")).abs().max() > 2 / 255


@pytest.mark.parametrize("args, message", [
    (["missing.png"], "missing.png: no such file or folder"),
    (["in/a.png", "--model", "in/a.png"], "neither safetensors nor a PyTorch pickle"),
    (["in/a.png", "--scale", "12"], "scale must be in [1, 8]"),
    (["in/a.png", "--tile", "64", "--tile-overlap", "64"], "--tile (64) must be larger than --tile-overlap (64)"),
    (["in/big.png", "--tile", "128", "--tile-overlap", "120"], "--tile 128 is too small for --tile-overlap 120"),
    (["in/a.png", "--grid-filter", "20"], "--grid-filter must be 0 (off) or a multiple of 8"),
    (["in/a.png", "--antiring", "1.5"], "--antiring must be in [0, 1] (0 = off, 1 = full), got 1.5"),
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


def _upscale(*args: str | Path) -> int:
    return main(["upscale", *map(str, args)])


def test_a_batch_goes_on_past_bad_files(setup, capsys):
    tmp, model, inputs = setup
    (inputs / "0-empty.png").write_bytes(b"")  # sorted first: before the good files
    (inputs / "c-truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    assert _upscale(inputs, "-o", tmp / "out", "--model", model) == 1
    assert sorted(p.name for p in (tmp / "out").iterdir()) == ["a_gendrpix.png", "b_gendrpix.png"]
    lines = capsys.readouterr().err.splitlines()
    failed = [line.strip() for line in lines if line.strip().startswith("failed:")]
    assert len(failed) == 2
    assert failed[0].startswith(f"failed: {inputs / '0-empty.png'}: cannot read as an image (")
    assert failed[1].startswith(f"failed: {inputs / 'c-truncated.jpg'}: cannot read as an image (")
    assert lines[-1].startswith("done: 2 image(s) in ") and lines[-1].endswith("; 2 failed (see the 'failed:' lines)")


def test_ctrl_c_stops_the_batch_at_once(setup, capsys, monkeypatch):
    tmp, model, inputs = setup
    (inputs / "0-empty.png").write_bytes(b"")
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(g, "upscale", interrupted)
    assert _upscale(inputs, "-o", tmp / "out", "--model", model) == 130
    assert len(calls) == 1 and list((tmp / "out").iterdir()) == []  # b.png was never started
    err = capsys.readouterr().err
    assert "0-empty.png: cannot read" in err and err.rstrip().endswith("interrupted")


def test_skip_existing_resumes_an_interrupted_batch(setup, capsys):
    tmp, model, inputs = setup
    out = tmp / "out"
    out.mkdir()
    (out / "a_gendrpix.png").write_bytes(b"done before the interrupt")
    assert _upscale(inputs, "-o", out, "--model", model) == 2
    assert "--skip-existing" in capsys.readouterr().err
    assert _upscale(inputs, "-o", out, "--model", model, "--skip-existing") == 0
    assert (out / "a_gendrpix.png").read_bytes() == b"done before the interrupt"
    assert Image.open(out / "b_gendrpix.png").size == (28, 36)
    err = capsys.readouterr().err
    assert "skipping 1 image(s) whose output exists" in err and "done: 1 image(s)" in err
    with pytest.raises(SystemExit):  # one or the other
        _upscale(inputs, "-o", out, "--model", model, "--skip-existing", "--overwrite")


RNG = np.random.default_rng(0)
WIDE = (RNG.random((10, 14, 4)) * 65535).astype(np.uint16)


@pytest.mark.parametrize("name, write", [
    ("rgb16.png", lambda p: png16(p, WIDE[..., :3])),
    ("rgba16.png", lambda p: png16(p, WIDE)),
    ("grey16.png", lambda p: png16(p, WIDE[..., :1])),
    ("rgb16.tif", lambda p: tiff16(p, WIDE[..., :3])),
    ("rgb16-deflate-motorola.tif", lambda p: tiff16(p, WIDE[..., :3], deflate=True, big_endian=True)),
])
def test_16bit_inputs_give_16bit_outputs(setup, name, write):
    tmp, model, _ = setup
    src = write(tmp / name)
    assert _upscale(src, "-o", tmp / "out", "--model", model) == 0
    dst = tmp / "out" / f"{Path(name).stem}_gendrpix.png"
    assert dst.read_bytes()[24] == 16  # the PNG header's bit depth
    api = g.upscale(g.load_model(model), g.load_image(src), g.UpscaleOptions(scale=4))
    assert (g.load_image(dst) - api).abs().max() <= 0.5 / 65535 + 1e-7


def test_8bit_inputs_still_give_8bit_outputs(setup):
    tmp, model, inputs = setup
    assert _upscale(inputs / "a.png", "-o", tmp / "a4.png", "--model", model) == 0
    assert (tmp / "a4.png").read_bytes()[24] == 8


@pytest.mark.parametrize("output", ["out.xyz", "out.tif", "photos.v2"])
def test_an_output_that_is_no_image_format_is_an_error(setup, capsys, output):
    tmp, model, inputs = setup
    assert _upscale(inputs / "a.png", "-o", tmp / output, "--model", model) == 2
    err = capsys.readouterr().err.strip()
    assert f"{Path(output).suffix} is not an image format" in err and ".png, .jpg, .jpeg, .webp" in err
    assert "\n" not in err and not (tmp / output).exists()


def test_folders_are_named_without_extension_or_with_a_slash(setup):
    tmp, model, inputs = setup
    (tmp / "existing.v1").mkdir()
    assert _upscale(inputs / "a.png", "-o", tmp / "existing.v1", "--model", model) == 0
    assert _upscale(inputs / "a.png", "-o", f"{tmp / 'new.v2'}{os.sep}", "--model", model) == 0
    assert (tmp / "existing.v1" / "a_gendrpix.png").is_file() and (tmp / "new.v2" / "a_gendrpix.png").is_file()
    assert _upscale(inputs, "-o", tmp / "two.png", "--model", model) == 2  # two inputs, one file name


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_verbose_shows_our_debug_log_not_pillows(setup):
    tmp, model, inputs = setup
    done = _python(f"from gendr_pix.cli import main; raise SystemExit(main(['-v', 'upscale', 'in/a.png', "
                   f"'-o', 'a4.png', '--model', {str(model)!r}]))", cwd=tmp)
    assert done.returncode == 0, done.stderr
    assert "DEBUG: plan: " in done.stderr  # gendr_pix.upscale's tile plan
    assert "STREAM" not in done.stderr and "PIL" not in done.stderr  # PngImagePlugin's chunk dump


def test_help_does_not_import_torch(tmp_path):
    done = _python("import sys\nfrom gendr_pix.cli import main\n"
                   "for argv in (['--help'], ['upscale', '--help'], ['info', '--help']):\n"
                   "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
                   "print('torch' in sys.modules)", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "--skip-existing" in done.stdout and done.stdout.split()[-1] == "False"  # both helps printed, no torch


def test_the_torch_free_choices_match_the_core():
    from gendr_pix import accel, choices, ensemble
    assert choices.PRECISIONS == ("auto", *accel.DTYPES)
    assert choices.ENSEMBLE_SIZES == tuple(sorted(ensemble.ENSEMBLE_OFFSETS))


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
