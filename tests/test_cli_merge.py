"""`python -m gendr_pix merge`: weighted sums of checkpoints (averaging, task arithmetic)."""

from pathlib import Path

import pytest
import torch
from conftest import make_tiny

import gendr_pix as g
from gendr_pix.cli import main
from gendr_pix.cli_merge import merge, parse_term


def _save(tmp_path, name, model):
    path = tmp_path / f"{name}.safetensors"
    g.save_model(model, path, dtype=None)
    return path


def test_task_arithmetic_adds_the_difference_of_two_runs_to_the_base(tmp_path):
    base, run, control = (_save(tmp_path, n, make_tiny(seed=s)) for n, s in (("base", 0), ("run", 1), ("ctl", 2)))
    merged = merge([(base, 1.0), (run, 1.0), (control, -1.0)])
    sd = {n: g.load_model(p).state_dict() for n, p in (("b", base), ("r", run), ("c", control))}
    for key, value in merged.state_dict().items():
        assert torch.allclose(value, sd["b"][key] + sd["r"][key] - sd["c"][key], atol=1e-6), key
    out = tmp_path / "merged.safetensors"
    g.save_model(merged, out, dtype=None)
    assert torch.equal(g.load_model(out).positive, merged.positive)


def test_merge_refuses_weights_that_do_not_sum_to_one_and_other_architectures(tmp_path):
    a = _save(tmp_path, "a", make_tiny(seed=0))
    with pytest.raises(ValueError, match="sum to 1 \\(they sum to 1.5\\)"):
        merge([(a, 1.0), (a, 0.5)])
    b = _save(tmp_path, "b", make_tiny(seed=0, context_tokens=2))
    with pytest.raises(ValueError, match="b.safetensors has another architecture"):
        merge([(a, 0.5), (b, 0.5)])
    assert parse_term("runs/x/model.safetensors:-1") == (Path("runs/x/model.safetensors"), -1.0)


@pytest.mark.parametrize("fp16, dtype", [(False, torch.float32), (True, torch.float16)])
def test_the_command_averages_two_files(tmp_path, capsys, fp16, dtype):
    a, b = _save(tmp_path, "a", make_tiny(seed=0)), _save(tmp_path, "b", make_tiny(seed=1))
    out = tmp_path / "avg.safetensors"
    assert main(["merge", str(out), f"{a}:0.5", f"{b}:0.5", *(["--fp16"] if fp16 else [])]) == 0
    tensors, _ = g.read_tensors(out)
    assert {t.dtype for t in tensors.values()} == {dtype}
    expected = (g.load_model(a).positive + g.load_model(b).positive) / 2
    assert torch.allclose(g.load_model(out).positive, expected, atol=1e-3 if fp16 else 1e-6)
    assert "0.5 x" in capsys.readouterr().out


@pytest.mark.parametrize("terms, message", [
    (["{a}:0.5", "{a}:0.6"], "weights must sum to 1 (they sum to 1.1)"),
    (["{a}:1", "{missing}:0"], "missing.safetensors"),
])
def test_the_command_names_the_problem_in_one_line(tmp_path, capsys, terms, message):
    a = _save(tmp_path, "a", make_tiny(seed=0))
    names = {"a": a, "missing": tmp_path / "missing.safetensors"}
    assert main(["merge", str(tmp_path / "o.safetensors"), *(t.format(**names) for t in terms)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "o.safetensors").exists()


def test_a_term_without_a_weight_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["merge", str(tmp_path / "o.safetensors"), "a.safetensors"])
    assert e.value.code == 2 and "expected FILE:WEIGHT" in capsys.readouterr().err
