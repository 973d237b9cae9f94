"""`python -m gendr_pix export`: a run's raw generator (last.pt), not its EMA, as a checkpoint file."""

import torch
from conftest import make_tiny

import gendr_pix as g
from gendr_pix.cli import main


def _run_folder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    g.save_model(make_tiny(seed=0), run / "model_ema.safetensors", dtype=None)
    raw = make_tiny(seed=1)
    torch.save({"generator": raw.state_dict(), "step": 7}, run / "last.pt")
    return run, raw


def test_export_writes_the_raw_generator_not_the_ema(tmp_path, capsys):
    run, raw = _run_folder(tmp_path)
    out = tmp_path / "raw.safetensors"
    assert main(["export", str(run), str(out)]) == 0
    exported = g.load_model(out).state_dict()
    for name, value in raw.state_dict().items():
        assert torch.equal(exported[name], value), name
    assert not torch.equal(exported["positive"], g.load_model(run / "model_ema.safetensors").positive)
    assert "at step 7" in capsys.readouterr().out


def test_export_names_what_the_run_folder_lacks(tmp_path, capsys):
    run, _ = _run_folder(tmp_path)
    (run / "last.pt").unlink()
    assert main(["export", str(run), str(tmp_path / "raw.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no last.pt" in err and "\n" not in err
