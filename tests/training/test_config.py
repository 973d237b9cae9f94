from pathlib import Path

import pytest

from gendr_pix.training.config import load_config

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_parse(path):
    cfg = load_config(path)
    assert cfg.run.steps > 0


def test_overrides_and_unknown_keys(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{"run": {"steps": 5}}')
    cfg = load_config(p, ["run.batch=3", "data.folder=/x", "loss.fourier_log=true"])
    assert (cfg.run.steps, cfg.run.batch, cfg.data.folder, cfg.loss.fourier_log) == (5, 3, "/x", True)
    p.write_text('{"run": {"stpes": 5}}')
    with pytest.raises(ValueError, match="unknown keys stpes"):
        load_config(p)
    p.write_text('{"rnu": {}}')
    with pytest.raises(ValueError, match="unknown sections rnu"):
        load_config(p)
    p.write_text('{"run": {"mode": "stage3"}}')
    with pytest.raises(ValueError, match="run.mode"):
        load_config(p)
