"""The benchmark: variants parse, FLOPs count what they should, and a tiny run writes valid JSON."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from gendr_pix.bench.flops import count_flops
from gendr_pix.bench.pipelines import Case, Variant, flops
from gendr_pix.bench.worker import measure_case, simulate_case
from gendr_pix.cli import main
from gendr_pix.unet import Attention


def test_variant_names_round_trip_and_reject_typos():
    for name in ("fp32", "bf16+cl", "fp16+cl+compile+fuse"):
        assert Variant.parse(name).name == name
    assert Variant.parse("bf16+cl").channels_last and Variant.parse("bf16+cl").torch_dtype == torch.bfloat16
    with pytest.raises(ValueError, match="dtype"):
        Variant.parse("fp64")
    with pytest.raises(ValueError, match="unknown flags"):
        Variant.parse("bf16+channels_last")


def test_flops_of_a_conv_and_an_attention_layer():
    with torch.device("meta"):
        conv = nn.Conv2d(8, 16, 3, padding=1)
        attn = Attention(64, None, 16)
    count = count_flops(conv, torch.empty(1, 8, 10, 12, device="meta"))
    assert count.total == count.conv == 2 * 8 * 16 * 9 * 10 * 12
    n = 50
    count = count_flops(attn, torch.empty(2, n, 64, device="meta"))
    assert count.attention == 2 * (2 * n * n * 64) * 2  # QK^T and PV, batch 2
    assert count.linear == 2 * (4 * n * 64 * 64) * 2  # q, k, v, out projections
    assert count.layer_flops == count.linear


def test_sd21_flops_match_the_paper_at_512():
    # The paper: 344 GMACs for one pass at 512x512 output, layers only (attention products excluded).
    pixel = flops(Case(pipeline="pixel", preset="sd21", height=512, width=512, variant=Variant()))
    assert abs(pixel.layer_flops / 2 - 344e9) / 344e9 < 0.01
    latent = flops(Case(pipeline="latent", preset="sd21", height=512, width=512, variant=Variant()))
    assert latent.total > 3 * pixel.total  # the VAE costs more than the UNet at 512


def _run_bench(tmp_path, *extra):
    out = tmp_path / "bench.json"
    args = ["bench", "--preset", "tiny", "--sizes", "64", "--warmup", "1", "--repeats", "1",
            "--no-ceiling", "--json", str(out), *extra]
    assert main(args) == 0
    return json.loads(out.read_text())


def test_bench_end_to_end_writes_valid_json(tmp_path, capsys):
    data = _run_bench(tmp_path, "--compare", "--variants", "fp32", "bf16+cl", "--no-isolate",
                      "--pipelines", "pixel", "latent", "padcfg")
    assert data["machine"]["device"] == "cpu" and data["machine"]["commit"]
    results = data["results"]
    assert len(results) == 6
    for r in results:
        assert "error" not in r, r
        assert r["latency_s"] > 0 and len(r["runs_s"]) == 1
        assert r["flops"] > 0 and r["achieved_flops_per_s"] == pytest.approx(r["flops"] / r["latency_s"])
        assert r["peak_tensor_bytes"] > r["weights_bytes"] > 0
    by = {(r["pipeline"], r["variant"]): r for r in results}
    # The latent pipeline carries the 57M-parameter VAE: more weights, more FLOPs, more memory.
    assert by["latent", "fp32"]["weights_bytes"] > 50 * by["pixel", "fp32"]["weights_bytes"]
    assert by["latent", "fp32"]["peak_tensor_bytes"] > by["pixel", "fp32"]["peak_tensor_bytes"]
    assert by["padcfg", "fp32"]["flops"] > 1.9 * by["pixel", "fp32"]["flops"]
    assert by["pixel", "bf16+cl"]["weights_bytes"] * 2 == by["pixel", "fp32"]["weights_bytes"]
    text = capsys.readouterr().out
    assert "pixel vs latent" in text and "speed-up" in text and "act ratio" in text


@pytest.mark.parametrize("pipeline", ["pixel", "latent", "padcfg"])
@pytest.mark.parametrize("variant", ["fp32", "bf16+cl"])
def test_simulated_memory_equals_the_measured_cpu_peak(pipeline, variant):
    # --simulate-memory's numbers (e.g. at 4K, too slow to run here) are only worth printing if they
    # equal what the tracker sees on a real CPU run of the same case.
    case = Case(pipeline=pipeline, preset="tiny", height=64, width=96, variant=Variant.parse(variant))
    real = measure_case(case, torch.device("cpu"), warmup=1, repeats=1)
    sim = simulate_case(case)
    assert sim["weights_bytes"] == real["weights_bytes"]
    assert sim["peak_tensor_bytes"] == real["peak_tensor_bytes"]


def test_bench_simulate_memory_prints_ratios_and_refuses_upscale(tmp_path, capsys):
    out = tmp_path / "sim.json"
    assert main(["bench", "--simulate-memory", "--preset", "tiny", "--sizes", "64", "96x64",
                 "--variants", "fp32", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "act vs latent" in text
    results = json.loads(out.read_text())["results"]
    assert [r["pipeline"] for r in results] == ["pixel", "latent"] * 2
    assert all(r["peak_tensor_bytes"] > r["weights_bytes"] > 0 for r in results)
    assert main(["bench", "--simulate-memory", "--pipelines", "upscale"]) == 2
    assert "cannot be simulated" in capsys.readouterr().err


def test_bench_isolated_worker_and_report_from_json(tmp_path, capsys):
    data = _run_bench(tmp_path, "--isolate", "--pipelines", "pixel", "upscale")
    assert data["isolated"] is True
    for r in data["results"]:
        assert "error" not in r, r
        assert r["peak_rss_delta_bytes"] > 0
    capsys.readouterr()
    assert main(["bench", "--from-json", str(tmp_path / "bench.json")]) == 0
    assert "upscale" in capsys.readouterr().out


def test_bench_plot_from_json(tmp_path):
    pytest.importorskip("matplotlib")
    _run_bench(tmp_path, "--no-isolate", "--sizes", "64", "128", "--pipelines", "pixel", "latent")
    png = tmp_path / "plot.png"
    assert main(["bench", "--from-json", str(tmp_path / "bench.json"), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_rejects_bad_arguments(tmp_path, capsys):
    assert main(["bench", "--sizes", "12x", "--json", str(tmp_path / "x.json")]) == 2
    assert "bad size" in capsys.readouterr().err
    assert main(["bench", "--variants", "bf17", "--json", str(tmp_path / "x.json")]) == 2
