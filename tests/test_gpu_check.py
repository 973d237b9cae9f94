"""`gpu_check` without a GPU: the dry run, the JSON writer, the time guards, the markdown tables, and
every device check on the CPU with emulated memory limits (so their logic is tested before a GPU runs
them), including that each check can fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gendr_pix.bench import gpu_check, gpu_steps, gpu_table
from gendr_pix.bench import gpu_checks as checks
from gendr_pix.bench.gpu_child import photo
from gendr_pix.bench.gpu_steps import PHOTO_FALLBACK, TINY, Setup

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def gpu_check_process(*args: str, cuda_hidden: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if cuda_hidden:
        env["CUDA_VISIBLE_DEVICES"] = ""  # a dry run also on a machine that has a GPU
    return subprocess.run([sys.executable, "-m", "gendr_pix.bench.gpu_check", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return checks.random_model("tiny", CPU, "fp32")


def crop(edge: int) -> torch.Tensor:
    return photo(Setup(device="cpu", tiny=True, photo=PHOTO_FALLBACK), edge)


def test_without_cuda_it_is_a_dry_run_that_says_so_and_exits_0(tmp_path):
    out = tmp_path / "gpu.json"
    proc = gpu_check_process("--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "needs a CUDA device" in proc.stdout and "Dry run: nothing was measured" in proc.stdout
    data = json.loads(out.read_text())
    assert data["status"] == "needs-cuda"
    assert list(data["steps"]) == list(gpu_steps.ORDER)
    assert {s["status"] for s in data["steps"].values()} == {"not run"}


def test_the_json_is_strict_and_written_whole(tmp_path):
    path = tmp_path / "sub" / "r.json"
    gpu_check.write_json(path, {"a": float("inf"), "b": [float("nan"), 1.5], "c": {"d": -float("inf")}})

    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    assert json.loads(path.read_text(), parse_constant=refuse) == {"a": None, "b": [None, 1.5], "c": {"d": None}}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary file left behind


def _fake_steps(monkeypatch, behaviour: dict[str, str], estimates: dict[str, float]):
    """Steps whose child passes at once ("pass"), fails ("fail") or hangs ("hang")."""
    code = {"pass": "import json,sys; json.dump({'passed': True, 'summary': 'fine'}, open(sys.argv[1], 'w'))",
            "fail": "import json,sys; json.dump({'passed': False, 'summary': 'bad'}, open(sys.argv[1], 'w'))",
            "hang": "import time; time.sleep(60)"}
    monkeypatch.setattr(gpu_steps, "command", lambda name, setup, work: [sys.executable, "-c", code[behaviour[name]],
                                                                          str(gpu_steps.result_path(name, work))])
    monkeypatch.setattr(gpu_steps, "estimate", lambda name, setup: estimates[name])


def test_steps_are_run_killed_skipped_or_cut_by_the_budget(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(gpu_check, "LIMIT_FACTOR", {"cpu": 1.0})
    monkeypatch.setattr(gpu_check, "LIMIT_SLACK_S", 0.0)  # a step's own limit = its estimate
    _fake_steps(monkeypatch, {"env": "pass", "precision": "hang", "oom": "pass", "tiles": "hang"},
                {"env": 10.0, "precision": 2.0, "oom": 100.0, "tiles": 25.0})
    out = tmp_path / "r.json"
    code = gpu_check.main(["--device", "cpu", "--tiny", "--budget", "20", "--json", str(out),
                           "--steps", "env", "precision", "oom", "tiles"])
    data = json.loads(out.read_text())
    steps = data["steps"]
    assert code == 1 and data["status"] == "failed"
    assert steps["env"]["status"] == "passed" and steps["env"]["summary"] == "fine"
    assert steps["precision"]["status"] == "timeout"  # killed at its own limit, not after 60 s
    assert steps["oom"]["status"] == "skipped" and "estimated 100 s" in steps["oom"]["reason"]
    assert steps["tiles"]["status"] == "cut"  # stopped when the budget ran out: reported, not a failure
    assert data["elapsed_s"] < 30
    assert "timeout" in capsys.readouterr().out


def test_a_failed_check_fails_the_command(monkeypatch, tmp_path):
    _fake_steps(monkeypatch, {"env": "pass", "oom": "fail"}, {"env": 1.0, "oom": 1.0})
    out = tmp_path / "r.json"
    assert gpu_check.main(["--device", "cpu", "--tiny", "--json", str(out), "--steps", "env", "oom"]) == 1
    assert json.loads(out.read_text())["steps"]["oom"]["status"] == "failed"


def test_the_plan_gives_every_step_an_estimate(capsys):
    assert gpu_check.main(["--device", "cpu", "--tiny", "--plan"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == gpu_steps.steps_for(Setup("cpu", True, None))
    assert all(float(line.split()[1]) > 0 for line in lines)


def test_bench_estimates_grow_with_the_flops():
    setup = Setup("cuda", False, None)
    small = gpu_steps._bench_seconds(setup, ["--sizes", "64", "--variants", "bf16", "--repeats", "1"])
    large = gpu_steps._bench_seconds(setup, ["--sizes", "512", "--variants", "bf16", "fp32", "--repeats", "3"])
    assert gpu_steps.STARTUP_S["cuda"] < small < large


def test_rehearsal_runs_real_steps_on_the_cpu_and_the_tables_show_them(tmp_path):
    out = tmp_path / "r.json"
    proc = gpu_check_process("--device", "cpu", "--tiny", "--json", str(out), "--budget", "3000",
                             "--steps", "env", "oom", "bench_512")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert data["status"] == "passed", data
    assert data["steps"]["oom"]["halvings"]
    assert {r["pipeline"] for r in data["steps"]["bench_512"]["results"]} == {"pixel", "padcfg"}
    text = gpu_table.render(data)
    assert "halved" in text and "| padcfg" in text


def test_precision_check_on_the_cpu(tiny_model):
    result = checks.precision(tiny_model, crop(TINY.precision), CPU, cpu_crop=TINY.cpu_crop)
    assert result["passed"], result["summary"]
    assert set(result["rows"]) == {"bf16", "fp16", "bf16+cl", "fp32 cpu vs cpu"}
    assert tiny_model.device == CPU and tiny_model.dtype == torch.float32
    assert tiny_model.unet.conv_in.weight.is_contiguous()  # channels_last undone


def test_precision_check_catches_a_half_precision_path_that_breaks(tiny_model):
    def nan_in_half(module, args, out):
        return out * float("nan") if out.dtype == torch.float16 else out

    handle = tiny_model.register_forward_hook(nan_in_half)
    try:
        result = checks.precision(tiny_model, crop(TINY.precision), CPU, cpu_crop=TINY.cpu_crop)
    finally:
        handle.remove()
    # Recorded as a failed row (NaN counted, or the core's own non-finite error), the others still measured.
    assert not result["passed"] and not result["rows"]["fp16"]["passed"] and result["rows"]["bf16"]["passed"]


def test_out_of_memory_check_halves_under_an_emulated_cap(tiny_model):
    result = checks.out_of_memory_halving(tiny_model, crop(TINY.oom), CPU, torch.float32, overlap=TINY.overlap,
                                          min_tile=TINY.min_tile)
    assert result["passed"], result["summary"]
    assert result["halvings"][0] == (128, 64) and result["final_tile"] == 64
    assert result["vs_same_tile"]["max_abs"] == 0


def test_out_of_memory_check_fails_when_nothing_is_halved(tiny_model):
    result = checks.out_of_memory_halving(tiny_model, crop(TINY.oom), CPU, torch.float32, overlap=TINY.overlap,
                                          min_tile=TINY.min_tile, share=1.5)  # a cap above the need
    assert not result["passed"] and result["summary"] == "no out-of-memory halving happened under the cap"


def test_auto_tiles_check_on_the_cpu(tiny_model):
    result = checks.auto_tiles(tiny_model, crop(TINY.tiles), CPU, torch.float32, overlap=TINY.overlap,
                               min_tile=TINY.min_tile, min_psnr_db=TINY.tiled_min_psnr_db)
    assert result["passed"], result["summary"]
    assert result["tiles"] > 1 and not result["halvings"]


def test_auto_tiles_check_fails_when_the_planner_ignores_free_memory(tiny_model, monkeypatch):
    monkeypatch.setattr(sys.modules["gendr_pix.upscale"], "plan_tile", lambda estimate, h, w, *rest: max(h, w))
    result = checks.auto_tiles(tiny_model, crop(TINY.tiles), CPU, torch.float32, overlap=TINY.overlap,
                               min_tile=TINY.min_tile, min_psnr_db=TINY.tiled_min_psnr_db)
    assert not result["passed"] and result["tiles"] == 1


def test_memory_estimate_check_on_the_cpu(tiny_model):
    result = checks.memory_estimate({"model": tiny_model}, [("model", "fp32", 64, 64), ("model", "bf16", 48, 32)], CPU)
    assert result["passed"], result["summary"]
    # On the CPU the measurement is the tracker the simulation also uses: they agree.
    assert all(0.9 < r["ratio"] < 1.1 for r in result["rows"]), result["rows"]


def test_fusion_and_bundled_checks_on_the_cpu(tiny_model):
    fusion = checks.guidance_fusion(tiny_model, [crop(16)], CPU, torch.float32, repeats=1)
    assert fusion["passed"], fusion["summary"]
    assert fusion["rows"][0]["fused_vs_two_calls"]["max_abs"] < 1e-4
    speed = checks.bundled_speed(tiny_model, crop(16), CPU, repeats=1)
    assert speed["passed"] and [r["variant"] for r in speed["rows"]] == list(checks.UPSCALE_VARIANTS)


def test_targets_table_reads_the_bench_rows():
    def row(pipeline, size, latency, peak):
        w, h = size
        return {"pipeline": pipeline, "preset": "sd21", "width": w, "height": h, "variant": "bf16+cl",
                "latency_s": latency, "peak_cuda_bytes": peak, "flops": 1e12, "achieved_flops_per_s": 1e12 / latency}

    data = {"status": "passed", "torch": "2.x", "steps": {"bench_4k": {"results": [
        row("pixel", (3840, 2160), 0.3, 2.7e9), row("latent", (3840, 2160), 1.2, 12.6e9)]}}}
    text = gpu_table.render(data)
    assert "| sd21 one pass at 3840x2160                | <= 400 ms | 300.0 ms (bf16+cl) | yes |" in text
    assert "| speed-up vs latent at 3840x2160 (bf16+cl) | >= 3x     | 4.00" in text
    assert "| memory vs latent at 3840x2160 (bf16+cl)   | <= 0.35x  | 0.21" in text
