"""scripts/merge_weights.py: weighted sums of checkpoints (averaging, task arithmetic)."""

import importlib.util
from pathlib import Path

import pytest
import torch

import gendr_pix as g
from tests.conftest import make_tiny

_SPEC = importlib.util.spec_from_file_location("merge_weights",
                                               Path(__file__).parents[2] / "scripts" / "merge_weights.py")
merge_weights = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(merge_weights)


def _save(tmp_path, name, model):
    path = tmp_path / f"{name}.safetensors"
    g.save_model(model, path, dtype=None)
    return path


def test_task_arithmetic_adds_the_difference_of_two_runs_to_the_base(tmp_path):
    base, run, control = (_save(tmp_path, n, make_tiny(seed=s)) for n, s in (("base", 0), ("run", 1), ("ctl", 2)))
    merged = merge_weights.merge([(base, 1.0), (run, 1.0), (control, -1.0)])
    sd = {n: g.load_model(p).state_dict() for n, p in (("b", base), ("r", run), ("c", control))}
    for key, value in merged.state_dict().items():
        assert torch.allclose(value, sd["b"][key] + sd["r"][key] - sd["c"][key], atol=1e-6), key
    out = tmp_path / "merged.safetensors"
    g.save_model(merged, out, dtype=None)
    assert torch.equal(g.load_model(out).positive, merged.positive)


def test_merge_refuses_weights_that_do_not_sum_to_one_and_other_architectures(tmp_path):
    a = _save(tmp_path, "a", make_tiny(seed=0))
    with pytest.raises(ValueError, match="sum to 1 \\(they sum to 1.5\\)"):
        merge_weights.merge([(a, 1.0), (a, 0.5)])
    b = _save(tmp_path, "b", make_tiny(seed=0, context_tokens=2))
    with pytest.raises(ValueError, match="b.safetensors has another architecture"):
        merge_weights.merge([(a, 0.5), (b, 0.5)])
    assert merge_weights.parse_term("runs/x/model.safetensors:-1") == (Path("runs/x/model.safetensors"), -1.0)
