"""Every training mode at toy scale: losses finite and falling on a fixed batch, checkpoints that
round-trip, and stage II judged by the stage-I model itself."""

from __future__ import annotations

import json
import math

import pytest
import torch

import gendr_pix
from gendr_pix.training.latent import StageOneStudent, load_latent, save_latent, student_from_teacher
from gendr_pix.training.objectives import shifted_output
from gendr_pix.training.train import Trainer

from .toy import fixed_batch, toy_config, toy_teacher


def _fit_fixed(trainer: Trainer, batch: dict, steps: int, key: str) -> list[float]:
    values = []
    for _ in range(steps):
        logs = trainer.train_step(batch)
        trainer.step += 1
        assert all(math.isfinite(v) for v in logs.values()), logs
        values.append(logs[key])
    return values


def _falls(values: list[float], by: float = 0.1) -> bool:
    """The mean of the last quarter is at least `by` (relative) below the mean of the first quarter."""
    k = max(2, len(values) // 4)
    return sum(values[-k:]) / k < (1 - by) * sum(values[:k]) / k


def test_pixel_mode_learns_a_fixed_batch_and_exports_a_loadable_model(tmp_path, photo_folder, use_fake_cache):
    cfg = toy_config(tmp_path, photo_folder, "pixel")
    trainer = Trainer(cfg, progress=False)
    assert trainer.disc is not None and trainer.objective.perceptual is not None
    emb_group = trainer.opt_g.param_groups[0]
    assert emb_group["lr_mult"] == cfg.run.embedding_lr_mult and len(emb_group["params"]) == 2
    pos0, neg0 = trainer.generator.positive.detach().clone(), trainer.generator.negative.detach().clone()
    l1 = _fit_fixed(trainer, fixed_batch(photo_folder), 30, "l1")
    assert _falls(l1), l1
    # both conditions learn (the negative one only from the fidelity share of the batch)
    assert not torch.equal(pos0, trainer.generator.positive) and not torch.equal(neg0, trainer.generator.negative)
    trainer.save()
    model = gendr_pix.load_model(trainer.dir / "model_ema.safetensors")
    for name, p in model.state_dict().items():
        q = trainer.ema.state_dict()[name]
        assert torch.equal(p, q.float()), name
    out = gendr_pix.upscale(model, torch.rand(1, 3, 16, 16), gendr_pix.UpscaleOptions(scale=4))
    assert out.shape == (1, 3, 64, 64)


def test_resume_continues_where_it_stopped(tmp_path, photo_folder, use_fake_cache):
    cfg = toy_config(tmp_path, photo_folder, "pixel", run={"steps": 3, "save_every": 1})
    first = Trainer(cfg, progress=False)
    first.fit()
    assert first.step == 3
    again = Trainer(toy_config(tmp_path, photo_folder, "pixel", run={"steps": 5, "save_every": 1}), progress=False)
    assert again.step == 3
    for (name, a), b in zip(first.generator.state_dict().items(), again.generator.state_dict().values()):
        assert torch.equal(a, b), name
    assert again.opt_g.state_dict()["state"]  # optimizer moments restored too
    again.fit()
    steps = [json.loads(line)["step"] for line in (again.dir / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]
    assert sorted(p.name for p in (again.dir / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]


def test_keep_snapshots_leaves_one_ema_model_per_save(tmp_path, photo_folder, use_fake_cache):
    run = {"steps": 4, "save_every": 2, "keep_snapshots": True}
    trainer = Trainer(toy_config(tmp_path, photo_folder, "pixel", run=run), progress=False)
    trainer.fit()
    assert sorted(p.name for p in trainer.dir.glob("ema_step*")) == ["ema_step2.safetensors", "ema_step4.safetensors"]
    assert (trainer.dir / "ema_step4.safetensors").read_bytes() == (trainer.dir / "model_ema.safetensors").read_bytes()
    assert (trainer.dir / "ema_step2.safetensors").read_bytes() != (trainer.dir / "model_ema.safetensors").read_bytes()


def test_a_non_finite_loss_stops_before_the_weights_change(tmp_path, photo_folder, use_fake_cache):
    trainer = Trainer(toy_config(tmp_path, photo_folder, "pixel"), progress=False)
    batch = fixed_batch(photo_folder)
    trainer.train_step(batch)
    before = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    ema_before = {k: v.clone() for k, v in trainer.ema.state_dict().items()}
    batch["hq"][0, 0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite .* at step 1; weights left unchanged"):
        trainer.train_step(batch)
    for name, value in trainer.generator.state_dict().items():
        assert torch.equal(value, before[name]), name
    for name, value in trainer.ema.state_dict().items():
        assert torch.equal(value, ema_before[name]), name


def test_stage1_predicts_the_teacher_latent(tmp_path, photo_folder, use_fake_cache):
    teacher = toy_teacher(tmp_path / "teacher.safetensors")
    cfg = toy_config(tmp_path, photo_folder, "stage1", teacher={"path": str(tmp_path / "teacher.safetensors")},
                     loss={"perceptual": 0.0})
    trainer = Trainer(cfg, progress=False)
    assert isinstance(trainer.generator, StageOneStudent)
    # Initialised from the teacher UNet except conv_in; the discriminator sits on the frozen teacher UNet.
    assert torch.equal(trainer.generator.unet.conv_out.weight, teacher.unet.conv_out.weight)
    assert trainer.disc.backbone is trainer.objective.teacher.unet
    l1 = _fit_fixed(trainer, fixed_batch(photo_folder), 30, "l1")
    assert _falls(l1), l1
    trainer.save()
    loaded = load_latent(trainer.dir / "model_ema.safetensors", "stage1")
    for name, p in loaded.state_dict().items():
        assert torch.equal(p, trainer.ema.state_dict()[name]), name


def test_stage2_uses_the_stage1_model_as_discriminator(tmp_path, photo_folder, use_fake_cache):
    teacher = toy_teacher(tmp_path / "teacher.safetensors")
    stage1 = student_from_teacher(teacher)
    with torch.no_grad():  # make it distinguishable from the teacher and from a fresh init
        for p in stage1.unet.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_latent(stage1, tmp_path / "stage1.safetensors")
    cfg = toy_config(tmp_path, photo_folder, "stage2", teacher={"path": str(tmp_path / "teacher.safetensors"),
                                                                 "stage1": str(tmp_path / "stage1.safetensors")},
                     run={"lr": 3e-3})
    trainer = Trainer(cfg, progress=False)
    backbone = trainer.disc.backbone
    assert backbone.config.in_channels == 192 and backbone.config.out_channels == 4
    for name, p in stage1.unet.state_dict().items():
        assert torch.equal(backbone.state_dict()[name], p), name
    assert not any(p.requires_grad for p in backbone.parameters())
    # The student starts from the stage-I UNet (all but conv_out) and outputs pixels.
    assert torch.equal(trainer.generator.unet.conv_in.weight, stage1.unet.conv_in.weight)
    assert isinstance(trainer.generator, gendr_pix.GenDRPix)
    batch = fixed_batch(photo_folder)
    before = [p.clone() for p in trainer.disc.head_parameters()]
    l1 = _fit_fixed(trainer, batch, 40, "l1")
    assert _falls(l1), [round(v, 4) for v in l1]
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.disc.head_parameters()))  # D heads train
    for name, p in stage1.unet.state_dict().items():  # the backbone stays frozen
        assert torch.equal(backbone.state_dict()[name], p), name
    trainer.save()
    model = gendr_pix.load_model(trainer.dir / "model_ema.safetensors")
    assert model.config.unet.in_channels == 192


def test_stage2_without_stage1_is_a_clear_error(tmp_path, photo_folder, use_fake_cache):
    toy_teacher(tmp_path / "teacher.safetensors")
    cfg = toy_config(tmp_path, photo_folder, "stage2", teacher={"path": str(tmp_path / "teacher.safetensors")})
    with pytest.raises(ValueError, match="teacher.stage1"):
        Trainer(cfg, progress=False)


def test_pixel_mode_with_teacher_targets(tmp_path, photo_folder, use_fake_cache):
    toy_teacher(tmp_path / "teacher.safetensors")
    cfg = toy_config(tmp_path, photo_folder, "pixel", teacher={"path": str(tmp_path / "teacher.safetensors")},
                     loss={"adversarial": 0.0}, run={"lr": 3e-3})
    trainer = Trainer(cfg, progress=False)
    batch = fixed_batch(photo_folder)
    out = trainer.objective(trainer.model, batch, 0)
    x = out.preview[:1]
    with torch.no_grad():
        expected = trainer.objective.target_fn(x)
    assert torch.allclose(out.preview[2:3], expected, atol=1e-4)  # the target is the teacher's output
    assert not torch.allclose(out.preview[2:3], batch["hq"][:1] * 2 - 1, atol=0.05)  # not the ground truth
    l1 = _fit_fixed(trainer, batch, 40, "l1")
    assert _falls(l1), [round(v, 4) for v in l1]


def test_pixel_mode_dists_term_on_a_random_window(tmp_path, photo_folder, use_fake_cache):
    cfg = toy_config(tmp_path, photo_folder, "pixel", loss={"dists": 1.0, "dists_crop": 32, "adversarial": 0.0},
                     run={"lr": 3e-3})
    trainer = Trainer(cfg, progress=False)
    assert trainer.objective.dists is not None
    d = _fit_fixed(trainer, fixed_batch(photo_folder), 30, "dists")
    assert _falls(d), [round(v, 4) for v in d]


def test_random_window_cuts_the_same_place_from_both():
    from gendr_pix.training.objectives import random_window

    a = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).view(2, 3, 16, 16)
    wa, wb = random_window(a, a + 1, 8)
    assert wa.shape == (2, 3, 8, 8) and torch.equal(wb, wa + 1)
    assert random_window(a, a, 0)[0] is a and random_window(a, a, 16)[0] is a


def test_unsharp_mask_sharpens_edges_and_leaves_flat_areas_and_fine_noise_alone():
    from gendr_pix.training.objectives import unsharp_mask

    edge = torch.full((1, 3, 64, 64), -0.5)
    edge[..., 32:] = 0.5
    sharp = unsharp_mask(edge, 0.5)
    assert sharp[..., 28:32].min() < -0.55 and sharp[..., 32:36].max() > 0.55  # overshoot on both sides
    assert torch.allclose(sharp[..., :8], edge[..., :8], atol=1e-6)  # far from the edge: unchanged
    assert sharp.abs().max() <= 1
    assert torch.allclose(unsharp_mask(edge, 0.0), edge, atol=1e-6)
    noise = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * (8 / 255)  # below 10/255
    assert torch.allclose(unsharp_mask(noise, 0.5), noise, atol=1e-6)


def test_sharpened_target_changes_the_losses_but_not_what_the_discriminator_calls_real(tmp_path, photo_folder,
                                                                                        use_fake_cache):
    batch = fixed_batch(photo_folder)
    outs = []
    for amount, fourier_too in ((0.0, True), (0.5, True), (0.5, False)):
        torch.manual_seed(0)
        trainer = Trainer(toy_config(tmp_path / f"{amount}-{fourier_too}", photo_folder, "pixel",
                                     loss={"sharpen_target": amount, "sharpen_fourier": fourier_too,
                                           "negative_share": 0.0}), progress=False)
        torch.manual_seed(1)
        outs.append(trainer.objective(trainer.model, batch, step=0))
    plain, sharpened, plain_fourier = outs
    assert torch.equal(plain.real, sharpened.real) and torch.allclose(plain.real, batch["hq"] * 2 - 1)
    assert sharpened.logs["l1"] != pytest.approx(plain.logs["l1"], rel=1e-3)
    # sharpen_fourier=false: the Fourier term keeps the plain photo, the other terms the sharpened one
    assert sharpened.logs["fourier"] != pytest.approx(plain.logs["fourier"], rel=1e-3)
    assert plain_fourier.logs["fourier"] == pytest.approx(plain.logs["fourier"], rel=1e-6)
    assert plain_fourier.logs["l1"] == pytest.approx(sharpened.logs["l1"], rel=1e-6)
    with pytest.raises(ValueError, match="sharpen_target must be >= 0"):
        toy_config(tmp_path, photo_folder, "pixel", loss={"sharpen_target": -1})
    with pytest.raises(ValueError, match="fourier_window must be 0 or a positive multiple of 8"):
        toy_config(tmp_path, photo_folder, "pixel", loss={"fourier_window": 12})


def test_fourier_window_and_compare_reach_the_objective(tmp_path, photo_folder, use_fake_cache):
    batch = fixed_batch(photo_folder)
    logs = []
    for window, compare, margin in ((0, "amplitude", 1.0), (32, "amplitude", 1.0), (32, "complex", 1.0),
                                    (32, "excess", 1.0), (32, "excess", 0.5)):
        torch.manual_seed(0)
        loss = {"fourier_window": window, "fourier_compare": compare, "fourier_margin": margin, "fourier": 1.0}
        trainer = Trainer(toy_config(tmp_path / f"{window}-{compare}-{margin}", photo_folder, "pixel", loss=loss),
                          progress=False)
        torch.manual_seed(1)
        logs.append(trainer.objective(trainer.model, batch, step=0).logs)
    assert logs[0]["l1"] == pytest.approx(logs[1]["l1"], rel=1e-6) == pytest.approx(logs[2]["l1"], rel=1e-6)
    assert logs[0]["fourier"] != pytest.approx(logs[1]["fourier"], rel=1e-3)
    assert logs[2]["fourier"] > logs[1]["fourier"]  # |a - b| >= ||a| - |b|| bin by bin
    assert logs[3]["fourier"] < logs[4]["fourier"] < logs[2]["fourier"]  # the margin sits between the two
    with pytest.raises(ValueError, match="fourier_compare must be one of amplitude, complex, excess"):
        toy_config(tmp_path, photo_folder, "pixel", loss={"fourier_compare": "phase"})
    with pytest.raises(ValueError, match="fourier_log works with loss.fourier_compare = 'amplitude' only"):
        toy_config(tmp_path, photo_folder, "pixel", loss={"fourier_compare": "excess", "fourier_log": True})
    with pytest.raises(ValueError, match="fourier_margin must be in \\[0, 1\\] and works with loss.fourier_compare"):
        toy_config(tmp_path, photo_folder, "pixel", loss={"fourier_compare": "complex", "fourier_margin": 0.5})


def test_shifted_output_tells_a_grid_locked_model_from_a_shift_equivariant_one():
    x, ctx = torch.rand(2, 3, 32, 48) * 2 - 1, torch.zeros(2, 4, 8)
    assert torch.equal(shifted_output(lambda a, c: a * 2, x, ctx), x * 2)
    cell = torch.randn(8, 8)

    def grid_locked(a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # adds a pattern tied to the 8x8 grid
        return a + cell.repeat(a.shape[-2] // 8, a.shape[-1] // 8)

    for _ in range(3):  # each call draws its own non-zero offset
        assert (shifted_output(grid_locked, x, ctx) - grid_locked(x, ctx)).abs().mean() > 0.5


def test_shift_consistency_reaches_the_objective_and_training_lowers_it(tmp_path, photo_folder, use_fake_cache):
    batch = fixed_batch(photo_folder)
    off = Trainer(toy_config(tmp_path / "off", photo_folder, "pixel"), progress=False)
    assert "shift" not in off.objective(off.model, batch, step=0).logs
    torch.manual_seed(0)
    trainer = Trainer(toy_config(tmp_path / "on", photo_folder, "pixel", loss={"shift_consistency": 20.0}),
                      progress=False)
    shift = _fit_fixed(trainer, batch, 30, "shift")
    assert _falls(shift, by=0.3), shift


def test_stop_at_gives_the_early_snapshot_of_the_longer_run(tmp_path, photo_folder, use_fake_cache):
    from gendr_pix.training.train import lr_at

    run = {"steps": 6, "save_every": 100, "warmup": 1}
    early = Trainer(toy_config(tmp_path / "early", photo_folder, "pixel", run={**run, "stop_at": 3}), progress=False)
    early.fit()
    assert early.step == 3 and (early.dir / "model_ema.safetensors").is_file()  # saved at stop_at
    assert lr_at(2, early.cfg) == lr_at(2, toy_config(tmp_path, photo_folder, "pixel", run=run))  # same schedule
    full = Trainer(toy_config(tmp_path / "full", photo_folder, "pixel", run={**run, "save_every": 3}), progress=False)
    full.fit()
    snap = [json.loads(line) for line in (full.dir / "log.jsonl").read_text().splitlines()][:3]
    ref = [json.loads(line) for line in (early.dir / "log.jsonl").read_text().splitlines()]
    assert [s["loss"] for s in snap] == pytest.approx([s["loss"] for s in ref], rel=1e-5)
    with pytest.raises(ValueError, match="stop_at must be in"):
        toy_config(tmp_path, photo_folder, "pixel", run={"steps": 4, "stop_at": 5})


def test_train_only_moves_just_the_named_parameters(tmp_path, photo_folder, use_fake_cache):
    cfg = toy_config(tmp_path, photo_folder, "pixel", run={"train_only": ["unet.conv_out"]})
    trainer = Trainer(cfg, progress=False)
    before = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    _fit_fixed(trainer, fixed_batch(photo_folder), 3, "l1")
    moved = {k for k, v in trainer.generator.state_dict().items() if not torch.equal(v, before[k])}
    assert moved == {"unet.conv_out.weight", "unet.conv_out.bias"}
    optimized = [p for g in trainer.opt_g.param_groups for p in g["params"]]
    assert len(optimized) == 2  # no AdamW state (or weight decay) for frozen parameters
    ema = trainer.ema.state_dict()
    assert torch.equal(ema["unet.conv_in.weight"], before["unet.conv_in.weight"])
    with pytest.raises(ValueError, match="'unet.conv_outt' names no generator parameter"):
        Trainer(toy_config(tmp_path / "b", photo_folder, "pixel", run={"train_only": ["unet.conv_outt"]}),
                progress=False)


def test_bf16_precision_runs_the_forward_in_bfloat16_and_keeps_float32_weights(tmp_path, photo_folder, use_fake_cache):
    loss = {"dists": 1.0, "sharpen_target": 0.5}
    fp32 = Trainer(toy_config(tmp_path / "fp32", photo_folder, "pixel", loss=loss), progress=False)
    bf16 = Trainer(toy_config(tmp_path / "bf16", photo_folder, "pixel", loss=loss, run={"precision": "bf16"}),
                   progress=False)
    seen = []
    bf16.generator.unet.conv_in.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    batch = fixed_batch(photo_folder)
    first = {}
    for name, trainer in (("fp32", fp32), ("bf16", bf16)):
        torch.manual_seed(0)  # the same random DISTS window and discriminator padding
        first[name] = trainer.train_step(batch)
        trainer.step += 1
    assert seen == [torch.bfloat16]
    # the same objective, to bfloat16's precision (same initial weights: both seeded alike)
    for key in ("l1", "lpips", "dists", "fourier", "loss"):
        assert first["bf16"][key] == pytest.approx(first["fp32"][key], rel=0.05), key
    l1 = [first["bf16"]["l1"], *_fit_fixed(bf16, batch, 29, "l1")]
    assert _falls(l1), l1
    params = [*bf16.generator.parameters(), *bf16.ema.parameters(), *bf16.disc.head_parameters()]
    assert all(p.dtype == torch.float32 for p in params)
    with pytest.raises(ValueError, match="run.precision must be one of"):
        toy_config(tmp_path, photo_folder, "pixel", run={"precision": "fp16"})


def test_the_log_says_how_long_each_step_waited_for_data(tmp_path, photo_folder, use_fake_cache):
    trainer = Trainer(toy_config(tmp_path, photo_folder, "pixel", run={"steps": 2}), progress=False)
    trainer.fit()
    records = [json.loads(line) for line in (trainer.dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    assert all(0 <= r["data_sec"] < 60 and r["sec"] > 0 for r in records)
