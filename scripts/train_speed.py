"""Training throughput of a config: seconds per step for each precision, and how many samples per
second one DataLoader worker prepares (crop + degradations on the CPU).

Why: a lent GPU comes for minutes, so a run there must be sized before it starts: the batch the
device takes, the precision, and enough `run.workers` to keep it fed (a device step faster than
batch / (workers x samples per second per worker) waits for data; the trainer logs that wait as
`data_sec`). The steps use random weights unless `model.init` is set; nothing is written to the
config's run folder.

    PYTHONPATH=. python scripts/train_speed.py --config configs/small-x4-phase12.toml
    PYTHONPATH=. python scripts/train_speed.py --config configs/small-x4-phase12.toml --device cuda \\
        --precision fp32 tf32 bf16 --set run.batch=32
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch.utils.data import default_collate

from gendr_pix.bench.measure import cpu_name, time_runs
from gendr_pix.training.config import load_config
from gendr_pix.training.data import PairDataset
from gendr_pix.training.train import Trainer


def data_rate(data: PairDataset, samples: int) -> float:
    """Samples per second of one worker (this process), with every photo decoded beforehand (the
    steady state of a long run: workers keep decoded photos in memory up to `data.cache_mb`)."""
    for k in range(len(data.paths)):
        data._image(k)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker
    t0 = time.monotonic()
    for i in range(samples):
        data[i]
    seconds = time.monotonic() - t0
    torch.set_num_threads(threads)
    return samples / seconds


def step_seconds(cfg, batch: dict, device: torch.device, repeats: int) -> float:
    """Fastest of `repeats` full training steps (generator and discriminator) after one warm-up."""
    trainer = Trainer(cfg, progress=False)
    trainer.step = cfg.loss.adversarial_start  # past it: the discriminator step is timed too
    return min(time_runs(lambda: trainer.train_step(batch), device, warmup=1, repeats=repeats).runs_s)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--steps", type=int, default=3, help="timed steps per precision (best is reported)")
    p.add_argument("--samples", type=int, default=16, help="samples for the data rate (0 = skip)")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        base = [f"run.dir={tmp}/run", f"run.device={args.device}", "model.init=", *args.set]
        cfg = load_config(args.config, base)
        device = torch.device(args.device)
        where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
            f"{cpu_name()}, {cfg.run.threads or torch.get_num_threads()} threads"
        print(f"{args.config}: preset {cfg.model.preset}, batch {cfg.run.batch}, crop {cfg.data.crop}, "
              f"adversarial from step {cfg.loss.adversarial_start}; {where}")
        data = PairDataset(cfg.data, cfg.degrade)
        if args.samples:
            rate = data_rate(data, args.samples)
            print(f"data: {rate:.2f} samples/s per worker ({cfg.run.batch / rate:.2f} s per batch)")
        batch = default_collate([data[i] for i in range(cfg.run.batch)])
        for precision in args.precision:
            run = load_config(args.config, base + [f"run.precision={precision}", f"run.dir={tmp}/{precision}"])
            best = step_seconds(run, batch, device, args.steps)
            peak = f", peak {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB" if device.type == "cuda" else ""
            print(f"{precision}: {best:.3f} s per step ({run.run.batch / best:.1f} samples/s{peak})", flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)


if __name__ == "__main__":
    main()
