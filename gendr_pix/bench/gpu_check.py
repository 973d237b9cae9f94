"""`python -m gendr_pix.bench.gpu_check`: every GPU check in one command, within a time budget, into one JSON.

    python -m gendr_pix.bench.gpu_check --json gpu_check.json        # on a CUDA machine (default budget 420 s)
    python -m gendr_pix.bench.gpu_table gpu_check.json               # the markdown tables for the docs

Steps (`gpu_steps.ORDER`, most important first) each run in their own process, so a CUDA error or a
memory cap in one cannot poison the next, and each has a hard time limit. Before a step starts, its
time is estimated from FLOP counts (`gpu_steps`); a step that cannot fit in what is left of the budget
is skipped, one still running when the budget ends is stopped ("cut"), and one that overruns its own
limit (on CUDA twice its estimate + 30 s) is killed ("timeout", a failure); all are reported. The JSON is rewritten
after every step, so whatever finished is kept even if the whole command is killed.

Without CUDA it is a dry run: it says so, writes a JSON with status "needs-cuda" and exits 0.
`--device cpu --tiny` rehearses every step on the CPU at tiny sizes (the tests run this).
Exit codes: 0 every step that ran passed (steps skipped or cut by the budget are listed, status
"partial"), or the dry run; 1 a step failed, errored or timed out; 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from . import gpu_steps
from .gpu_steps import DESCRIPTIONS, Setup

DEFAULT_BUDGET_S = 420
"""7 minutes for the steps: the command must end within 8, with Python's start and the summary."""
SKIP_BELOW = 0.5
"""A step is skipped when less than this share of its estimate is left of the budget (estimates are
conservative: see gpu_steps)."""
LIMIT_FACTOR = {"cuda": 2.0, "cpu": math.inf}
LIMIT_SLACK_S = 30.0
"""A step is killed after LIMIT_FACTOR x its estimate + LIMIT_SLACK_S, or when the budget runs out. The CPU
rehearsal has no limit of its own: on a shared CPU a step took 50x its estimate; the budget still applies."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gendr_pix.bench.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, default=None, help="result file (default: $OUT/gpu_check.json if OUT is "
                                                          "set, else runs/gpu_check/gpu_check-TIME.json)")
    p.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="seconds for all steps (default 420)")
    p.add_argument("--steps", nargs="+", default=None,
                   help=f"only these steps (default: all): {' '.join(gpu_steps.ORDER)}")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu only with --tiny (a rehearsal)")
    p.add_argument("--tiny", action="store_true", help="tiny sizes and a tiny random model (CPU rehearsal)")
    p.add_argument("--photo", type=Path, default=None, help="photo for the quality checks (default: data/photos/val, "
                                                            "else the example photo)")
    p.add_argument("--plan", action="store_true", help="print the steps and their estimated seconds; run nothing")
    p.add_argument("--note", default="", help="free text kept in the JSON (e.g. the commit, since git is absent)")
    p.add_argument("--run-step", default=None, help=argparse.SUPPRESS)  # child: one step
    p.add_argument("--step-json", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.device == "cpu" and not args.tiny:
        p.error("--device cpu needs --tiny: the full sizes are for a GPU")
    unknown = sorted(set(args.steps or ()) - set(gpu_steps.ORDER))
    if unknown:
        p.error(f"unknown steps {unknown}; known: {' '.join(gpu_steps.ORDER)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    setup = Setup(device=args.device, tiny=args.tiny, photo=args.photo or gpu_steps.default_photo())
    if args.run_step:
        from .gpu_child import run_step

        write_json(args.step_json, run_step(args.run_step, setup))
        return 0
    steps = [s for s in gpu_steps.steps_for(setup) if args.steps is None or s in args.steps]
    if args.plan:
        return print_plan(steps, setup)
    path = args.json or default_json_path()
    data = header(args, setup)
    if args.device == "cuda" and not torch.cuda.is_available():
        return dry_run(data, steps, path)
    return run_steps(data, steps, setup, path, args.budget)


def default_json_path() -> Path:
    if os.environ.get("OUT"):
        return Path(os.environ["OUT"]) / "gpu_check.json"
    return Path("runs/gpu_check") / f"gpu_check-{time.strftime('%Y%m%dT%H%M%S')}.json"


def header(args: argparse.Namespace, setup: Setup) -> dict[str, Any]:
    command = " ".join(["python -m gendr_pix.bench.gpu_check", *sys.argv[1:]])
    return {"format": 1, "tool": "gendr_pix.bench.gpu_check", "command": command,
            "note": args.note, "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "device": setup.device,
            "tiny": setup.tiny, "photo": str(setup.photo) if setup.photo else None, "budget_s": args.budget,
            "torch": torch.__version__, "python": platform.python_version(), "status": "running", "steps": {}}


def dry_run(data: dict[str, Any], steps: list[str], path: Path) -> int:
    print(f"gpu_check needs a CUDA device: torch {torch.__version__} sees none (CUDA build: "
          f"{torch.version.cuda or 'no'}). Dry run: nothing was measured.")
    print("On a CUDA machine it would run: " + ", ".join(steps))
    print("Rehearse every step on this CPU at tiny sizes: python -m gendr_pix.bench.gpu_check --device cpu --tiny")
    data.update(status="needs-cuda", steps={s: {"status": "not run", "what": DESCRIPTIONS[s]} for s in steps})
    write_json(path, data)
    print(f"results: {path}")
    return 0


def print_plan(steps: list[str], setup: Setup) -> int:
    total = 0.0
    for name in steps:
        seconds = gpu_steps.estimate(name, setup)
        total += seconds
        print(f"{name:<14} {seconds:7.1f} s  {DESCRIPTIONS[name]}")
    print(f"{'total':<14} {total:7.1f} s  (estimated from FLOP counts; see gendr_pix/bench/gpu_steps.py)")
    return 0


def run_steps(data: dict[str, Any], steps: list[str], setup: Setup, path: Path, budget: float) -> int:
    deadline = time.monotonic() + budget
    # FLOP counting takes seconds per step on the CPU: done in a thread while the first steps run.
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp, ThreadPoolExecutor(1) as pool:
        estimates = {name: pool.submit(gpu_steps.estimate, name, setup) for name in steps}
        for name in steps:
            data["steps"][name] = record = run_one(name, setup, Path(tmp), deadline, estimates[name].result())
            print(status_line(name, record), flush=True)
            if record["status"] in ("failed", "error", "timeout") and record.get("error"):
                print("    " + record["error"].replace("\n", "\n    "), flush=True)
            write_json(path, data)
    statuses = [r["status"] for r in data["steps"].values()]
    bad = [s for s in statuses if s in ("failed", "error", "timeout")]
    unfinished = [s for s in statuses if s in ("skipped", "cut")]
    data.update(status="failed" if bad else "partial" if unfinished else "passed",
                finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                elapsed_s=round(budget - (deadline - time.monotonic()), 1))
    write_json(path, data)
    print(f"\n{data['status']}: {statuses.count('passed')} passed, {len(bad)} failed, "
          f"{len(unfinished)} skipped or cut by the budget in {data['elapsed_s']:.0f} s of {budget:.0f} s")
    print(f"results: {path}\ntables:  python -m gendr_pix.bench.gpu_table {path}")
    return 1 if bad else 0


def run_one(name: str, setup: Setup, work: Path, deadline: float, estimate: float) -> dict[str, Any]:
    """Skip, or run with a time limit; the record that goes into the JSON."""
    left = deadline - time.monotonic()
    record: dict[str, Any] = {"what": DESCRIPTIONS[name], "estimate_s": round(estimate, 1)}
    if left < SKIP_BELOW * estimate:
        return {**record, "status": "skipped", "seconds": 0.0,
                "reason": f"estimated {estimate:.0f} s, {max(0.0, left):.0f} s of the budget left"}
    own = LIMIT_FACTOR[setup.device] * estimate + LIMIT_SLACK_S
    limit = min(left, own)
    start = time.monotonic()
    try:
        proc = subprocess.run(gpu_steps.command(name, setup, work), capture_output=True, text=True,
                              timeout=limit, cwd=gpu_steps.REPO, env=child_env())
    except subprocess.TimeoutExpired:
        seconds = round(time.monotonic() - start, 1)
        if limit < own:  # the budget ran out: reported, not a failure of the step
            return {**record, "status": "cut", "seconds": seconds,
                    "reason": f"stopped when the budget ran out, after {seconds:.0f} s (estimate {estimate:.0f} s)"}
        return {**record, "status": "timeout", "seconds": seconds,
                "reason": f"killed after {seconds:.0f} s, its limit (estimate {estimate:.0f} s)"}
    seconds = round(time.monotonic() - start, 1)
    try:
        result = gpu_steps.collect(name, work, proc)
    except (OSError, ValueError, KeyError) as e:
        return {**record, "status": "error", "seconds": seconds, "error": f"{type(e).__name__}: {e}"}
    status = "passed" if result.pop("passed") else "error" if "error" in result else "failed"
    return {**record, "status": status, "seconds": seconds, **result}


def child_env() -> dict[str, str]:
    root = str(gpu_steps.REPO)
    return {**os.environ, "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


def status_line(name: str, record: dict[str, Any]) -> str:
    detail = record.get("summary") or record.get("reason") or ""
    return f"{name:<14} {record['status']:<8} {record['seconds']:6.1f} s (est. {record['estimate_s']:.0f})  {detail}"


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Strict JSON (non-finite floats become null), written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_finite(data), indent=1, allow_nan=False))
    os.replace(tmp, path)


def _finite(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
