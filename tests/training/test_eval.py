import json

import torch

import gendr_pix
from gendr_pix.cli import main
from gendr_pix.training.evaluate import EvalConfig, evaluate, hr_crops, markdown_table


def _toy_model(path):
    torch.manual_seed(0)
    model = gendr_pix.GenDRPix(gendr_pix.ModelConfig(unet=gendr_pix.UNET_PRESETS["tiny"], context_tokens=2))
    gendr_pix.save_model(model, path)
    return gendr_pix.load_model(path)


def test_evaluate_reports_every_method_and_metric(tmp_path, photo_folder, use_fake_cache):
    model = _toy_model(tmp_path / "m.safetensors")
    cfg = EvalConfig(folder=str(photo_folder), crop=64, references=False, ensembles=(2,), cfg_scales=(0.0, 2.0),
                     padcfg_scales=(1.5,), grid_filters=(32,), save_dir=str(tmp_path / "out"))
    report = evaluate(model, cfg)
    for setting in ("bicubic", "realesrgan"):
        rows = report["results"][setting]
        assert set(rows) == {"bicubic", "GenDR-Pix small (w=1)", "GenDR-Pix small, ensemble x2",
                             "GenDR-Pix small, grid filter 32 px", "GenDR-Pix small, PadCFG w=1.5",
                             "GenDR-Pix small, CFG w=0", "GenDR-Pix small, CFG w=2", "GenDR-Pix small (defaults)"}
        for metrics in rows.values():
            assert set(metrics) == {"psnr", "ssim", "lpips", "dists", "niqe", "grid", "halo", "false_edges", "seconds",
                                    "grid_worst", "halo_worst", "false_edges_worst"}
        assert rows["bicubic"]["psnr"] > 20 and 0 < rows["bicubic"]["ssim"] <= 1
    # the real-world inputs are harder than plain bicubic ones, for the same bicubic upscaler
    assert report["results"]["realesrgan"]["bicubic"]["psnr"] < report["results"]["bicubic"]["bicubic"]["psnr"]
    assert len(list((tmp_path / "out" / "bicubic" / "bicubic").glob("*.png"))) == 3
    assert "| bicubic |" in markdown_table(report)


def test_eval_is_seeded(tmp_path, photo_folder, use_fake_cache):
    cfg = EvalConfig(folder=str(photo_folder), crop=64, references=False, settings=("realesrgan",), limit=1,
                     threads=2)
    before = torch.get_num_threads()
    a, b = evaluate(None, cfg), evaluate(None, cfg)
    assert torch.get_num_threads() == before  # the caller's thread setting is restored
    assert a["results"]["realesrgan"]["bicubic"]["psnr"] == b["results"]["realesrgan"]["bicubic"]["psnr"]


def test_eval_cli_writes_json(tmp_path, photo_folder, use_fake_cache, capsys):
    _toy_model(tmp_path / "m.safetensors")
    code = main(["eval", "--hr", str(photo_folder), "--model", str(tmp_path / "m.safetensors"), "--crop", "64",
                 "--no-references", "--ensemble", "", "--cfg", "", "--padcfg", "", "--settings", "bicubic",
                 "--grid-filter", "64", "--json", str(tmp_path / "r.json"), "--limit", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "GenDR-Pix small (w=1)" in out and "GenDR-Pix small, grid filter 64 px" in out
    assert json.loads((tmp_path / "r.json").read_text())["photos"] == ["p0"]


def test_eval_cli_names_a_missing_folder(tmp_path, use_fake_cache, capsys):
    assert main(["eval", "--hr", str(tmp_path / "nope"), "--no-model"]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_grey_eval_scores_the_luma_of_each_photo(photo_folder):
    colour = hr_crops(EvalConfig(folder=str(photo_folder), crop=64))
    grey = hr_crops(EvalConfig(folder=str(photo_folder), crop=64, grey=True))
    assert [n for n, _ in grey] == [n for n, _ in colour]
    for (_, c), (_, g) in zip(colour, grey):
        assert c.shape == g.shape and torch.equal(g[0], g[1]) and torch.equal(g[1], g[2])
        assert (c[0] - c[1]).abs().max() > 0.01  # the stand-in photos are in colour
        luma = (c * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0)
        torch.testing.assert_close(g[0], luma.clamp(0, 1))


def test_missing_references_hint_names_the_fix_for_each_cause(tmp_path, monkeypatch):
    import sys
    import types

    from gendr_pix.training.references import REFERENCE_MODELS, available, missing_hint

    monkeypatch.setitem(sys.modules, "ncnn", None)  # `import ncnn` raises ImportError
    assert available(tmp_path) == {}
    assert "ncnn package is not installed" in missing_hint(tmp_path)  # not "run fetch-weights"
    monkeypatch.setitem(sys.modules, "ncnn", types.ModuleType("ncnn"))
    (tmp_path / "ncnn").mkdir()
    for stem in ("realesrgan-x4plus.param", "realesrgan-x4plus.bin", "ClearReality4x.param"):
        (tmp_path / "ncnn" / stem).write_text("")
    assert list(available(tmp_path)) == ["Real-ESRGAN x4plus"]
    hint = missing_hint(tmp_path)
    assert hint.startswith("SPAN ClearReality4x not in") and "fetch-weights" in hint
    (tmp_path / "ncnn" / "ClearReality4x.bin").write_text("")
    assert missing_hint(tmp_path) == "" and set(available(tmp_path)) == set(REFERENCE_MODELS)
