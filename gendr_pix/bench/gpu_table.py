"""`python -m gendr_pix.bench.gpu_table gpu_check.json`: the GPU tables for the docs, in markdown.

Reads what `gpu_check` wrote and prints: what it ran on, each step's outcome, precision, the memory
estimate against the allocator, the fused PadCFG, the bundled model at 1024 -> 4096, the sd21 pixel vs
latent bench, and the GPU targets from the docs against what was measured. A step that did not run
leaves its rows as "-", so the dry run's JSON gives the empty tables.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .report import _table, comparison_table, results_table

GB = 1e9
TARGETS = (
    # (what, pipeline, size WxH, variants tried in order, field, at most)
    ("sd21 one pass at 3840x2160", "pixel", "3840x2160", ("bf16+cl", "bf16"), "latency_s", 0.4),
    ("sd21 peak memory at 3840x2160", "pixel", "3840x2160", ("bf16+cl", "bf16"), "peak_cuda_bytes", 3e9),
    ("sd21 PadCFG at 3840x2160", "padcfg", "3840x2160", ("bf16+cl+fuse", "bf16+cl"), "latency_s", 0.8),
    ("sd21 one pass at 512", "pixel", "512x512", ("bf16+cl", "bf16"), "latency_s", 0.010),
)
"""The GPU targets the README names (H100), checked against the bench rows."""
SPEEDUP_VS_LATENT, MEMORY_VS_LATENT = 3.0, 0.35
"""Pixel vs latent at 2048 and 3840x2160 (bf16+cl): at least this much faster, at most this much memory."""


def _f(x: float | None, fmt: str = ".3f", scale: float = 1.0) -> str:
    return "-" if x is None else format(x / scale, fmt)


def _step(data: dict[str, Any], name: str) -> dict[str, Any]:
    return data.get("steps", {}).get(name, {})


def machine_line(data: dict[str, Any]) -> str:
    env = _step(data, "env")
    gpu = env.get("gpu") or ("no GPU (dry run)" if data.get("status") == "needs-cuda" else data.get("device"))
    parts = [gpu, f"torch {data.get('torch')}", f"CUDA {env.get('cuda') or '-'}", f"cuDNN {env.get('cudnn') or '-'}",
             f"driver {env.get('driver') or '-'}", data.get("started", "")]
    if data.get("note"):
        parts.append(data["note"])
    return "Measured on " + ", ".join(str(p) for p in parts if p) + "."


def steps_table(data: dict[str, Any]) -> str:
    rows = [[name, r.get("status", "-"), _f(r.get("seconds"), ".0f"), _f(r.get("estimate_s"), ".0f"),
             (r.get("summary") or r.get("reason") or "").replace("|", "/")[:160]]
            for name, r in data.get("steps", {}).items()]
    return _table(["step", "status", "s", "estimate s", "result"], rows)


def precision_table(data: dict[str, Any]) -> str:
    rows = [[k, _f(r["psnr_db"], ".1f"), _f(r["max_abs"], ".4f"),
             f">= {r['min_psnr_db']:.0f} dB, <= {r['max_abs_limit']:.4f}", "yes" if r["passed"] else "NO"]
            for k, r in _step(data, "precision").get("rows", {}).items()]
    return _table(["variant", "PSNR vs fp32 (dB)", "max abs diff", "required", "ok"], rows or [["-"] * 5])


def memory_table(data: dict[str, Any]) -> str:
    rows = [[r["model"], r["dtype"], f"{r['output'][1]}x{r['output'][0]}", _f(r["estimate_bytes"], ".3f", GB),
             _f(r["peak_bytes"], ".3f", GB), _f(r["ratio"], ".2f"), "yes" if r["passed"] else "NO"]
            for r in _step(data, "memory").get("rows", [])]
    return _table(["model", "dtype", "output", "estimated GB", "allocator peak GB", "peak / estimate",
                   "within planner margin"], rows or [["-"] * 7])


def fusion_table(data: dict[str, Any]) -> str:
    rows = [[f"{r['output'][1]}x{r['output'][0]}", _f(r["two_calls_s"], ".4f"), _f(r["fused_s"], ".4f"),
             f"{r['speedup']:.2f}x", f"{r['two_calls_peak_bytes'] / GB:.2f} / {r['fused_peak_bytes'] / GB:.2f}",
             str(r["planner_fuses"]), _f(r["fused_vs_two_calls"]["psnr_db"], ".1f")]
            for r in _step(data, "fusion").get("rows", [])]
    return _table(["output", "two calls s", "fused s", "speed-up", "peak GB two / fused", "planner fuses",
                   "fused vs two calls dB"], rows or [["-"] * 7])


def bundled_table(data: dict[str, Any]) -> str:
    rows = [[r["variant"], _f(r["latency_s"], ".3f"), _f(r["peak_bytes"], ".2f", GB),
             _f(r["achieved_flops_per_s"], ".1f", 1e12)] for r in _step(data, "bundled").get("rows", [])]
    return _table(["variant", "time s", "peak GB (above weights)", "TFLOP/s"], rows or [["-"] * 4])


def bench_results(data: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, float]]:
    results, ceilings = [], {}
    for name, step in data.get("steps", {}).items():
        if name.startswith("bench"):
            results += step.get("results", [])
            ceilings.update(step.get("ceilings") or {})
    return results, ceilings


def targets_table(results: list[dict[str, Any]]) -> str:
    ok = {(r["pipeline"], f"{r['width']}x{r['height']}", r["variant"]): r for r in results if "error" not in r}
    rows = []
    for what, pipeline, size, variants, key, limit in TARGETS:
        r = next((ok[(pipeline, size, v)] for v in variants if (pipeline, size, v) in ok), None)
        value = None if r is None else r.get(key)
        shown = "-" if value is None else f"{value / GB:.2f} GB" if "bytes" in key else f"{value * 1e3:.1f} ms"
        limit_text = f"{limit / GB:.0f} GB" if "bytes" in key else f"{limit * 1e3:.0f} ms"
        rows.append([what, f"<= {limit_text}", shown + ("" if r is None else f" ({r['variant']})"),
                     "-" if value is None else "yes" if value <= limit else "no"])
    for size in ("2048x2048", "3840x2160"):
        px, lat = ok.get(("pixel", size, "bf16+cl")), ok.get(("latent", size, "bf16+cl"))
        speed = mem = None
        if px is not None and lat is not None:
            speed = lat["latency_s"] / px["latency_s"]
            mem = px.get("peak_cuda_bytes", 0) / max(1, lat.get("peak_cuda_bytes", 0))
        rows.append([f"speed-up vs latent at {size} (bf16+cl)", f">= {SPEEDUP_VS_LATENT:.0f}x", _f(speed, ".2f"),
                     "-" if speed is None else "yes" if speed >= SPEEDUP_VS_LATENT else "no"])
        rows.append([f"memory vs latent at {size} (bf16+cl)", f"<= {MEMORY_VS_LATENT}x", _f(mem, ".2f"),
                     "-" if mem is None else "yes" if mem <= MEMORY_VS_LATENT else "no"])
    return _table(["target (README, H100)", "required", "measured", "met"], rows)


def render(data: dict[str, Any]) -> str:
    results, ceilings = bench_results(data)
    oom, tiles, bundled = _step(data, "oom"), _step(data, "tiles"), _step(data, "bundled")
    sizes = " -> ".join(f"{e[1]}x{e[0]}" for e in (bundled.get("input"), bundled.get("output")) if e) or "1024 -> 4096"
    sections = [
        ("GPU checks", machine_line(data) + "\n\n" + steps_table(data)),
        ("GPU targets", targets_table(results)),
        ("Half precision against fp32 (bundled model, photo crop)", precision_table(data)),
        ("Out-of-memory halving and automatic tiles",
         f"- halving under a memory cap: {oom.get('summary', '-')}\n- automatic tiles: {tiles.get('summary', '-')}"),
        ("Memory estimate against torch.cuda.max_memory_allocated (one model call)", memory_table(data)),
        ("Fused PadCFG (bundled model, bf16)", fusion_table(data)),
        (f"Bundled model, {sizes}, upscale() end to end", bundled_table(data)),
        ("sd21 pixel vs latent", (comparison_table(results) or "-") + "\n\n" +
         (results_table(results, ceilings) if results else "")),
    ]
    return "\n\n".join(f"### {title}\n{body.strip()}" for title, body in sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gendr_pix.bench.gpu_table", description=__doc__.splitlines()[0])
    p.add_argument("json", type=Path, help="the file gpu_check wrote")
    args = p.parse_args(argv)
    try:
        data = json.loads(args.json.read_text())
    except (OSError, json.JSONDecodeError) as e:
        print(f"error: cannot read {args.json}: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
