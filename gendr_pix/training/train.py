"""The training loop shared by all modes: AdamW, warm-up + cosine LR, EMA, resume, JSONL logs, sample
grids, optional discriminator step, and DDP when started by `torchrun` (one process per device).

Run state lives in `run.dir`: `last.pt` (everything needed to resume, loaded with weights_only=True),
`model_ema.safetensors` (the exported generator: our checkpoint format for pixel/stage2, the latent
format for stage1), `log.jsonl`, `config.json`, `samples/step_XXXXXX.png`.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader

from gendr_pix import save_model

from .build import build_objective
from .config import TrainConfig
from .data import ContinuingSampler, PairDataset
from .latent import StageOneStudent, save_latent
from .losses import discriminator_loss, random_pad
from .progress import JsonlLog, ProgressBar

log = logging.getLogger(__name__)


def _dist_info() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def lr_at(step: int, cfg: TrainConfig) -> float:
    r = cfg.run
    if step < r.warmup:
        return r.lr * (step + 1) / r.warmup
    t = (step - r.warmup) / max(1, r.steps - r.warmup)
    return r.lr * (r.lr_min_ratio + (1 - r.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def param_groups(generator: nn.Module, cfg: TrainConfig) -> list[dict]:
    """AdamW groups: the condition embeddings (if any) with their LR multiplier, then the network.
    GenDRPix registers its embeddings before the UNet, so the optimizer's parameter numbering is
    generator.parameters() order (of the trainable ones, see `run.train_only`) either way."""
    params = [(n, p) for n, p in generator.named_parameters() if p.requires_grad]
    emb = [p for n, p in params if n in ("positive", "negative")]
    rest = [p for n, p in params if n not in ("positive", "negative")]
    groups = [{"params": emb, "lr_mult": cfg.run.embedding_lr_mult}] if emb else []
    return groups + [{"params": rest, "lr_mult": 1.0}]


def freeze_except(generator: nn.Module, prefixes: tuple[str, ...]) -> None:
    """`run.train_only`: leave gradients on only the parameters under `prefixes` (all if empty)."""
    if not prefixes:
        return
    named = list(generator.named_parameters())
    under = {n: [pre for pre in prefixes if n == pre or n.startswith(pre + ".")] for n, _ in named}
    for prefix in set(prefixes) - {pre for matched in under.values() for pre in matched}:
        tops = sorted({n.rsplit(".", 1)[0] for n in under if n.count(".") <= 2})
        raise ValueError(f"run.train_only: {prefix!r} names no generator parameter "
                         f"(modules with parameters include: {', '.join(tops[:40])})")
    for n, p in named:
        p.requires_grad_(bool(under[n]))


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1 - decay)


def save_grid(preview: Tensor, path: Path) -> None:
    """Rows of [input | output | target] images in [-1, 1] -> PNG."""
    row = torch.cat(list(((preview.float().cpu() + 1) / 2).clamp(0, 1)), dim=-1)
    Image.fromarray((row.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)


def export(model: nn.Module, path: Path) -> None:
    if isinstance(model, StageOneStudent):
        save_latent(model, path)
    else:
        save_model(model, path, dtype=None)


class Trainer:
    def __init__(self, cfg: TrainConfig, *, progress: bool = True) -> None:
        self.cfg, self.progress = cfg, progress
        self.rank, self.world = _dist_info()
        self.device = torch.device(cfg.run.device if cfg.run.device != "cuda" or self.world == 1
                                   else f"cuda:{self.rank % max(1, torch.cuda.device_count())}")
        if cfg.run.threads:
            torch.set_num_threads(cfg.run.threads)
        # Denormal floats (tiny Adam moments, near-zero activations) run 10-100x slower on CPUs;
        # flushing them to zero changes nothing measurable and keeps the step time flat.
        torch.set_flush_denormal(True)
        if self.device.type == "cuda" and cfg.run.precision != "fp32":  # the fast path (crops have one size)
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        self.dir = Path(cfg.run.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "samples").mkdir(exist_ok=True)
        self.objective = build_objective(cfg)
        self._place()
        self.generator = self.objective.generator.train().requires_grad_(True)
        freeze_except(self.generator, cfg.run.train_only)
        self.ema = copy.deepcopy(self.generator).eval().requires_grad_(False) if cfg.run.ema else None
        self.disc = self.objective.discriminator
        self.opt_g = torch.optim.AdamW(param_groups(self.generator, cfg), lr=cfg.run.lr, betas=(0.9, 0.99),
                                       weight_decay=cfg.run.weight_decay)
        self.opt_d = torch.optim.AdamW(self.disc.head_parameters(), lr=cfg.run.lr_d, betas=(0.5, 0.99)) \
            if self.disc is not None else None
        self.step = 0
        self._resume()
        self.model = self.generator
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.generator, device_ids=ids)

    def _place(self) -> None:
        for name in ("generator", "discriminator", "teacher", "perceptual", "dists"):
            module = getattr(self.objective, name, None)
            if module is not None:
                module.to(self.device)

    def state(self) -> dict:
        return {"step": self.step, "generator": self.generator.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else {},
                "disc_heads": self.disc.heads.state_dict() if self.disc is not None else {},
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict() if self.opt_d else {},
                "config": json.dumps(self.cfg.to_dict())}

    def _resume(self) -> None:
        path = self.dir / "last.pt"
        if not path.is_file():
            return
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.generator.load_state_dict(state["generator"])
        if self.ema is not None and state["ema"]:
            self.ema.load_state_dict(state["ema"])
        if self.disc is not None and state["disc_heads"]:
            self.disc.heads.load_state_dict(state["disc_heads"])
            self.opt_d.load_state_dict(state["opt_d"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.step = int(state["step"])
        log.info("resumed %s at step %d", path, self.step)

    def save(self) -> None:
        if self.rank:
            return
        tmp = self.dir / "last.pt.tmp"
        torch.save(self.state(), tmp)
        os.replace(tmp, self.dir / "last.pt")
        model = self.dir / "model_ema.safetensors"
        export(self.ema if self.ema is not None else self.generator, model)
        if self.cfg.run.keep_snapshots:
            shutil.copyfile(model, self.dir / f"ema_step{self.step}.safetensors")
        (self.dir / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=1))

    def loader(self) -> DataLoader:
        cfg = self.cfg
        data = PairDataset(cfg.data, cfg.degrade)
        sampler = ContinuingSampler(self.step * cfg.run.batch * self.world, self.rank, self.world)
        return DataLoader(data, batch_size=cfg.run.batch, sampler=sampler, num_workers=cfg.run.workers,
                          persistent_workers=cfg.run.workers > 0, prefetch_factor=2 if cfg.run.workers else None,
                          pin_memory=self.device.type == "cuda")

    def autocast(self):
        """`run.precision = "bf16"`: forward passes in bfloat16 (the losses cast back to float32)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.run.precision == "bf16")

    def _allreduce_grads(self, params) -> None:
        if self.world == 1:
            return
        for p in params:
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= self.world

    def train_step(self, batch: dict[str, Tensor]) -> dict[str, float]:
        cfg = self.cfg
        batch = {k: v.to(self.device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}
        for group in self.opt_g.param_groups:
            group["lr"] = lr_at(self.step, cfg) * group.get("lr_mult", 1.0)
        with self.autocast():
            out = self.objective(self.model, batch, self.step)
        self.opt_g.zero_grad(set_to_none=True)
        out.loss.backward()
        if self.disc is not None:
            self.disc.heads.zero_grad(set_to_none=True)  # the G step must not train D
        norm = nn.utils.clip_grad_norm_(self.generator.parameters(), cfg.run.grad_clip)
        _check_finite(self.step + 1, grad_norm=float(norm), **out.logs)
        self.opt_g.step()
        logs = dict(out.logs, grad_norm=float(norm), lr=self.opt_g.param_groups[-1]["lr"])  # the network's LR
        if self.opt_d is not None and out.fake is not None and self.step >= cfg.loss.adversarial_start:
            with self.autocast():
                d = discriminator_loss(self.disc(random_pad(out.real)), self.disc(random_pad(out.fake)))
            _check_finite(self.step + 1, d=d.item())
            self.opt_d.zero_grad(set_to_none=True)
            d.backward()
            self._allreduce_grads(self.disc.head_parameters())
            self.opt_d.step()
            logs["d"] = d.item()
        if self.ema is not None:
            ema_update(self.ema, self.generator, cfg.run.ema if self.step >= cfg.run.warmup else 0.0)
        self._preview = out.preview
        return logs

    def fit(self) -> dict[str, float]:
        r = self.cfg.run
        jsonl = JsonlLog(self.dir / "log.jsonl")
        last = r.stop_at or r.steps
        bar = ProgressBar(last, self.step, enabled=self.progress and self.rank == 0)
        t_start = time.monotonic()
        logs: dict[str, float] = {}
        if self.step >= last:
            return logs
        t_wait = time.monotonic()
        for batch in self.loader():
            t0 = time.monotonic()
            logs = self.train_step(batch)
            self.step += 1
            # data_sec: how long the step waited for its batch; well above 0 = the DataLoader workers
            # (degradations on the CPU) are the bottleneck, not the device (raise run.workers)
            logs["sec"], logs["data_sec"] = time.monotonic() - t0, t0 - t_wait
            if self.rank == 0 and (self.step % r.log_every == 0 or self.step == 1):
                jsonl.write({"step": self.step, "time": time.time(), **logs})
            if self.rank == 0 and r.sample_every and self.step % r.sample_every == 0:
                save_grid(self._preview, self.dir / "samples" / f"step_{self.step:06d}.png")
            bar.update(self.step, logs)
            out_of_time = r.max_minutes and (time.monotonic() - t_start) / 60 > r.max_minutes
            if self.step % r.save_every == 0 or self.step >= last or out_of_time:
                self.save()
            if self.step >= last or out_of_time:
                break
            t_wait = time.monotonic()
        bar.close()
        return logs


def _check_finite(step: int, **values: float) -> None:
    """Stop before an optimizer step that would write NaN/inf into the weights, so the last saved
    checkpoint (and resuming from it) stays good."""
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if bad:
        raise FloatingPointError(f"non-finite {bad} at step {step}; weights left unchanged, the last saved "
                                 "checkpoint is intact (lower the learning rate or check the data, then resume)")


def train(cfg: TrainConfig, *, progress: bool = True) -> Trainer:
    trainer = Trainer(cfg, progress=progress)
    trainer.fit()
    return trainer
