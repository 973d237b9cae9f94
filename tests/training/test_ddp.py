"""DDP through torchrun: two CPU processes (gloo) train the toy model in lock-step."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import gendr_pix


def test_torchrun_two_processes(tmp_path, photo_folder, fake_cache):
    cfg = {"run": {"dir": str(tmp_path / "run"), "steps": 3, "batch": 2, "warmup": 1, "workers": 0, "log_every": 1,
                   "save_every": 3, "sample_every": 0, "threads": 1},
           "model": {"preset": "tiny", "context_tokens": 2},
           "data": {"folder": str(photo_folder), "crop": 64},
           "loss": {"adversarial_start": 0}}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    env = dict(os.environ, GENDR_PIX_CACHE=str(fake_cache), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "gendr_pix", "train", "--config", str(tmp_path / "cfg.json"), "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("done at step 3") == 2  # both ranks finished
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]  # only rank 0 logs
    gendr_pix.load_model(tmp_path / "run" / "model_ema.safetensors")
