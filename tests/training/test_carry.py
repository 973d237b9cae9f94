"""scripts/carry.py and carry_train.sh: a run carried to an offline GPU machine in calls of capped size."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from gendr_pix import load_model
from gendr_pix.checkpoint import save_model
from gendr_pix.training.perceptual import WEIGHTS_FILE

from .toy import toy_config

REPO = Path(__file__).parents[2]
_SPEC = importlib.util.spec_from_file_location("carry", REPO / "scripts" / "carry.py")
carry = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(carry)
MIB = carry.MIB


def test_plan_fills_the_last_call_first_and_opens_calls_only_when_needed():
    sizes = {"a": 8, "b": 6, "c": 5, "d": 2}
    calls = carry.plan_calls(sizes, room=10, last_room=7)
    assert calls[-1] == ["b"]  # the last call (with the photos) is filled first, largest first
    assert sorted(sum(calls, [])) == sorted(sizes)
    assert all(sum(sizes[k] for k in c) <= 10 for c in calls[:-1])
    assert len(calls) == 3
    with pytest.raises(ValueError, match=r"tensor a \(0.0 MiB\) does not fit"):
        carry.plan_calls(sizes, room=7, last_room=7)
    with pytest.raises(ValueError, match="the photos alone overflow the last call"):
        carry.plan_calls(sizes, room=10, last_room=-1)


def test_pack_stash_unpack_round_trip(tmp_path, fake_cache, photo_folder, monkeypatch):
    source = fake_cache / WEIGHTS_FILE
    monkeypatch.setattr(carry, "STASH", tmp_path / "stash")
    budget = 24 * MIB  # float16 stand-ins are 33 MiB: two calls at least
    folders = carry.pack(source, tmp_path / ".carry", budget, MIB, [photo_folder], base=0)
    assert len(folders) >= 2
    photos = carry.folder_bytes(photo_folder)
    for folder in folders:
        upload = carry.folder_bytes(folder) + (photos if folder == folders[-1] else 0)
        assert upload <= budget - MIB, (folder, upload)

    # Only the last call's shards: the missing calls are named, nothing is written.
    with pytest.raises(SystemExit, match=r"call\(s\) \[1"):
        carry.unpack([folders[-1]], tmp_path / "cache")
    assert not (tmp_path / "cache").exists()

    for folder in folders[:-1]:
        carry.stash(folder)
    joined = carry.unpack([*sorted((tmp_path / "stash").iterdir()), folders[-1]], tmp_path / "cache")
    original, back = load_file(str(source)), load_file(str(joined))
    assert back.keys() == original.keys()
    for k, t in original.items():
        assert back[k].dtype == torch.float32 and back[k].shape == t.shape
        if t.numel() * 4 < carry.SMALL_BYTES:
            assert torch.equal(back[k], t), k  # heads, biases, DISTS alpha/beta: exact
        else:
            assert torch.allclose(back[k], t, rtol=1e-3, atol=1e-4), k  # float16 rounding only


def test_pack_never_clears_a_folder_it_did_not_write(tmp_path, fake_cache, photo_folder):
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    with pytest.raises(ValueError, match="notes.txt"):
        carry.pack(fake_cache / WEIGHTS_FILE, tmp_path, 24 * MIB, MIB, [photo_folder], base=0)
    assert keep.read_text() == "mine"


def test_unpack_refuses_shards_of_two_packs(tmp_path, fake_cache, photo_folder):
    source = fake_cache / WEIGHTS_FILE
    first = carry.pack(source, tmp_path / "one", 24 * MIB, MIB, [photo_folder], base=0)
    other = tmp_path / "other.safetensors"
    weights = load_file(str(source))
    weights["dists.alpha"] = weights["dists.alpha"] + 1
    save_file(weights, str(other))
    second = carry.pack(other, tmp_path / "two", 24 * MIB, MIB, [photo_folder], base=0)
    with pytest.raises(SystemExit, match="different packs"):
        carry.unpack([first[0], second[-1]], tmp_path / "cache")


def test_pieces_join_back_to_the_float16_model_and_a_short_piece_is_caught(tmp_path, photo_folder):
    from gendr_pix.training.build import init_pixel_model, model_config

    model = init_pixel_model(model_config(toy_config(tmp_path, photo_folder)), seed=0)
    save_model(model, tmp_path / "ema.safetensors", dtype=None)  # float32, as training exports it
    parts = carry.pieces(tmp_path / "ema.safetensors", tmp_path / "out", piece=64 * 1024)
    assert len(parts) >= 2 and all(p.stat().st_size <= 64 * 1024 for p in parts)
    target = tmp_path / "back" / "model_ema.safetensors"
    carry.join(target, sorted((tmp_path / "out").iterdir()))
    assert {t.dtype for t in load_file(str(target)).values()} == {torch.float16}  # as the bundled file
    back = load_model(target).state_dict()
    for k, t in model.state_dict().items():
        assert torch.equal(back[k], t.half().to(back[k].dtype)), k

    parts[-1].write_bytes(parts[-1].read_bytes()[:-10])  # a piece cut short on the way
    before = target.read_bytes()
    with pytest.raises(SystemExit, match="do not match"):
        carry.join(target, sorted((tmp_path / "out").iterdir()))
    assert target.read_bytes() == before  # the earlier file is left as it was


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_carry_train_sh_runs_the_last_call_end_to_end(tmp_path, fake_cache, photo_folder):
    """The device side at toy scale on the CPU: shards from an earlier call's stash and this call's
    .carry folder are joined, a step is timed, run.steps is sized from it, training runs, and the
    float16 EMA comes back in pieces that join into a loadable model."""
    work = tmp_path / "work"
    (work / "scripts").mkdir(parents=True)
    for name in ("carry.py", "carry_train.sh", "train_speed.py"):
        shutil.copy(REPO / "scripts" / name, work / "scripts" / name)
    folders = carry.pack(fake_cache / WEIGHTS_FILE, work / ".carry", 24 * MIB, MIB, [photo_folder], base=0)
    stash = tmp_path / "stash"
    for folder in folders[:-1]:
        shutil.move(str(folder), str(stash / folder.name))  # came in an earlier call
    config = tmp_path / "toy.json"
    config.write_text(json.dumps(toy_config(tmp_path, photo_folder, "pixel").to_dict()))
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OUT": str(out), "DEVICE": "cpu", "PRECISION": "fp32", "WORKERS": "0",
           "PYTHON": sys.executable, "PYTHONPATH": str(REPO), "GENDR_PIX_CACHE": str(tmp_path / "cache"),
           "GENDR_PIX_CARRY_STASH": str(stash)}
    done = subprocess.run(["bash", "scripts/carry_train.sh", str(config), "0.05", "--set", "run.save_every=1000"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "cache" / WEIGHTS_FILE).is_file()
    steps = int(done.stdout.split("training ")[1].split()[0])
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps >= 1 and 1 <= logged[-1]["step"] <= steps
    assert f"done at step {steps};" in done.stdout or f"of {steps}: the schedule did not end" in done.stdout
    carry.join(tmp_path / "model.safetensors", sorted(out.glob("model.*")))
    assert load_model(tmp_path / "model.safetensors") is not None
