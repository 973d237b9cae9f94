"""`python -m gendr_pix sweep`: one scored row per point of the settings grid, as `eval` scores them."""

import json

from conftest import make_tiny

import gendr_pix as g
from gendr_pix.cli import main


def test_sweep_scores_every_point_of_the_grid(tmp_path, photo_folder, use_fake_cache, capsys):
    model = tmp_path / "m.safetensors"
    g.save_model(make_tiny(), model)
    report = tmp_path / "sweep.json"
    code = main(["sweep", "--hr", str(photo_folder), "--model", str(model), "--crop", "64", "--settings", "bicubic",
                 "--ensemble", "1,2", "--modes", "cfg,padcfg", "--scales", "1.5", "--grid-filter", "0,32",
                 "--color-fix", "wavelet", "--threads", "1", "--json", str(report)])
    assert code == 0
    data = json.loads(report.read_text())
    rows = data["results"]["bicubic"]
    assert len(rows) == 2 * 2 * 1 * 2
    assert "ensemble 2, padcfg w=1.5, grid filter 32 px, wavelet colour fix" in rows
    assert all(set(m) >= {"psnr", "lpips", "dists", "grid"} for m in rows.values())
    assert data["sweep"]["scales"] == "1.5" and data["sweep"]["model"] == str(model)
    assert "| ensemble 1, cfg w=1.5, wavelet colour fix |" in capsys.readouterr().out


def test_sweep_names_a_bad_mode_in_one_line(tmp_path, photo_folder, use_fake_cache, capsys):
    model = tmp_path / "m.safetensors"
    g.save_model(make_tiny(), model)
    assert main(["sweep", "--hr", str(photo_folder), "--model", str(model), "--modes", "cfgg", "--crop", "64"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "cfgg" in err and "\n" not in err
