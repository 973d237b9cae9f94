"""scripts/train_speed.py: the numbers a GPU run is sized by come out, for each precision asked for."""

import importlib.util
import json
import re
import sys
from pathlib import Path

from .toy import toy_config

_SPEC = importlib.util.spec_from_file_location("train_speed", Path(__file__).parents[2] / "scripts" / "train_speed.py")
train_speed = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(train_speed)


def test_prints_a_step_time_per_precision_and_the_data_rate(tmp_path, photo_folder, use_fake_cache, monkeypatch,
                                                           capsys):
    config = tmp_path / "toy.json"
    config.write_text(json.dumps(toy_config(tmp_path, photo_folder, "pixel").to_dict()))
    monkeypatch.setattr(sys, "argv", ["train_speed.py", "--config", str(config), "--precision", "fp32", "bf16",
                                      "--steps", "1", "--samples", "2"])
    train_speed.main()
    out = capsys.readouterr().out
    assert re.search(r"^data: [0-9.]+ samples/s per worker", out, re.M), out
    for precision in ("fp32", "bf16"):
        seconds = re.search(rf"^{precision}: ([0-9.]+) s per step", out, re.M)
        assert seconds and float(seconds.group(1)) > 0, out
    assert not (tmp_path / "run_pixel").exists()  # nothing written to the config's run folder
