"""`python -m gendr_pix bench`: pixel-space vs latent (VAE16) pipeline cost, side by side in one run.

Every case (pipeline x preset x output size x variant) reports the median latency of warm runs, peak
memory, counted FLOPs and achieved FLOP/s against this device's matmul ceiling. On the CPU each case
runs in a fresh subprocess by default, so peak RSS is that case's own (see `worker`); the cases still
interleave within one invocation on one machine state. Results go to a JSON file; `--plot` draws
latency and peak memory against output size from it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ..cli import CLIError
from .measure import git_commit, machine_info, matmul_peak_flops
from .pipelines import DTYPES, PIPELINES, Case, Variant
from .report import comparison_table, memory_table, results_table, variant_table
from .worker import case_to_dict, measure_case, simulate_case

log = logging.getLogger(__name__)

COMPARE_VARIANTS = ("fp32", "bf16", "bf16+cl")


def parse_size(text: str) -> tuple[int, int]:
    """`1024` -> (1024, 1024); `3840x2160` (width x height) -> (2160, 3840) as (height, width)."""
    try:
        if "x" in text:
            w, h = (int(p) for p in text.lower().split("x"))
        else:
            h = w = int(text)
    except ValueError:
        raise CLIError(f"bad size {text!r}: use N or WIDTHxHEIGHT, e.g. 1024 or 3840x2160") from None
    if h < 1 or w < 1:
        raise CLIError(f"bad size {text!r}: must be positive")
    return h, w


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", nargs="+", default=["sd21"], help="UNet presets (default: sd21)")
    p.add_argument("--sizes", nargs="+", default=["512", "1024"], help="output sizes: N or WxH (default: 512 1024)")
    p.add_argument("--pipelines", nargs="+", default=["pixel", "latent"], choices=PIPELINES,
                   help="pipelines (default: pixel latent)")
    p.add_argument("--variants", nargs="+", default=None,
                   help="levers, e.g. fp32 bf16+cl fp16+cl+compile padcfg's +fuse (default: fp32; "
                        f"with --compare: {' '.join(COMPARE_VARIANTS)})")
    p.add_argument("--compare", action="store_true",
                   help="run pixel vs latent and the variants side by side; print ratio tables")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs before timing (>= 1, default 1)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs; the median is reported (default 3)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                   help="fresh subprocess per case (default: on for CPU, off for CUDA)")
    p.add_argument("--json", type=Path, default=None, help="result file (default: runs/bench/bench-TIME.json)")
    p.add_argument("--plot", type=Path, default=None, help="also draw a PNG of latency/memory vs size")
    p.add_argument("--from-json", type=Path, nargs="+", default=None,
                   help="only print tables / plot from earlier result files (several are merged)")
    p.add_argument("--simulate-memory", action="store_true",
                   help="peak memory only, simulated on the meta device (no compute: seconds at any size, "
                        "e.g. 3840x2160); equals the CPU's tracked peak")
    p.add_argument("--no-ceiling", action="store_true", help="skip the matmul ceiling measurement")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CLIError("--device cuda: this torch build sees no CUDA device")
    return device


def _cases(args: argparse.Namespace) -> list[Case]:
    names = args.variants or (list(COMPARE_VARIANTS) if args.compare else ["fp32"])
    try:
        variants = [Variant.parse(n) for n in names]
        sizes = [parse_size(s) for s in args.sizes]
        return [Case(pipeline=pl, preset=pr, height=h, width=w, variant=v)
                for pr in args.preset for h, w in sizes for v in variants for pl in args.pipelines]
    except ValueError as e:
        raise CLIError(str(e)) from None


def _run_isolated(case: Case, device: torch.device, args: argparse.Namespace) -> dict[str, Any]:
    spec = {"case": case_to_dict(case), "device": str(device), "warmup": args.warmup,
            "repeats": args.repeats, "threads": args.threads}
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.run([sys.executable, "-m", "gendr_pix.bench.worker", json.dumps(spec), str(out)],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            # A killed child (e.g. the kernel's OOM killer) leaves no result file.
            return {**case_to_dict(case), "label": case.label, "device": str(device),
                    "error": f"worker exit {proc.returncode}: {tail[0][:200]}"}
        return json.loads(out.read_text())


def _ceilings(device: torch.device, cases: list[Case]) -> dict[str, float]:
    out = {}
    for dtype in sorted({c.variant.dtype for c in cases}):
        try:
            out[dtype] = matmul_peak_flops(device, DTYPES[dtype])
        except RuntimeError as e:  # e.g. fp16 matmul unsupported on an old CPU build
            log.warning("no %s matmul ceiling on %s: %s", dtype, device, e)
    return out


def print_report(data: dict[str, Any]) -> None:
    results, ceilings = data["results"], data.get("ceilings", {})
    m = data["machine"]
    print(f"machine: {m.get('gpu') or m.get('cpu')} ({m.get('cpu_cores')} cores, torch {m.get('torch')}, "
          f"{m.get('torch_threads')} threads), commit {m.get('commit')}")
    if ceilings:
        print("matmul ceiling: " + ", ".join(f"{k} {v / 1e12:.3f} TFLOP/s" for k, v in ceilings.items()))
    print(results_table(results, ceilings))
    for title, table in (("pixel vs latent", comparison_table(results)),
                         (f"variants vs {results[0]['variant'] if results else ''}",
                          variant_table(results, results[0]["variant"]) if results else "")):
        if table:
            print(f"\n{title}:\n{table}")


def load_results(paths: list[Path]) -> dict[str, Any]:
    """Read one or more result files; results are concatenated, machine facts come from the first."""
    merged: dict[str, Any] | None = None
    for path in paths:
        try:
            data = json.loads(path.read_text())
            results = data["results"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise CLIError(f"cannot read bench results {path}: {e}") from None
        if merged is None:
            merged = {**data, "results": list(results)}
        else:
            merged["results"].extend(results)
            merged["ceilings"] = {**data.get("ceilings", {}), **merged.get("ceilings", {})}
    return merged


def run(args: argparse.Namespace) -> int:
    if args.simulate_memory:
        return _simulate(args)
    if args.from_json:
        data = load_results(args.from_json)
    else:
        data = _measure(args)
    print_report(data)
    if args.plot:
        from .plot import plot_results

        plot_results(data, args.plot)
        print(f"plot: {args.plot}")
    return 0


def _command_line() -> str:
    """How this run was invoked, recorded in its result file."""
    return " ".join(["python -m gendr_pix", *sys.argv[1:]])


def _simulate(args: argparse.Namespace) -> int:
    if args.from_json or args.plot:
        raise CLIError("--simulate-memory prints its own table; it does not read --from-json or --plot")
    results = []
    for case in _cases(args):
        log.info("simulating %s", case.label)
        try:
            results.append(simulate_case(case))
        except ValueError as e:
            raise CLIError(f"--simulate-memory: {e}") from None
    print("peak memory simulated on the meta device (weights + inputs + live activations):")
    print(memory_table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"format": 1, "simulated": True, "command": _command_line(),
                                         "commit": git_commit(), "results": results}, indent=1))
        print(f"results: {args.json}")
    return 0


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    if args.warmup < 1 or args.repeats < 1:
        raise CLIError("--warmup and --repeats must be >= 1")
    device = _device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cases = _cases(args)
    isolate = device.type == "cpu" if args.isolate is None else args.isolate
    ceilings = {} if args.no_ceiling else _ceilings(device, cases)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    results = []
    for i, case in enumerate(cases, 1):
        log.info("[%d/%d] %s", i, len(cases), case.label)
        if isolate:
            result = _run_isolated(case, device, args)
        else:
            result = measure_case(case, device, warmup=args.warmup, repeats=args.repeats)
        results.append(result)
        if "error" in result:
            log.warning("  failed: %s", result["error"])
        else:
            log.info("  %.3f s", result["latency_s"])
    machine = machine_info(device)
    for r in results:  # each row names what measured it, also after files are merged
        r.update(commit=machine["commit"], machine=machine.get("gpu") or machine["cpu"])
    data = {"format": 1, "started": started, "command": _command_line(),
            "isolated": isolate, "machine": machine, "ceilings": ceilings, "results": results}
    path = args.json or Path("runs/bench") / f"bench-{started.replace(':', '')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    print(f"results: {path}")
    return data
