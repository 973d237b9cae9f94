"""Latency and peak memory against output size, pixel vs latent, drawn from a bench JSON.

matplotlib is an optional dependency (`pip install matplotlib`); only this module imports it.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from ..cli import CLIError

STYLE = {"pixel": ("tab:blue", "o"), "latent": ("tab:red", "s"), "padcfg": ("tab:green", "^"),
         "upscale": ("tab:purple", "D")}


def _series(results: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    series = defaultdict(list)
    for r in results:
        if "error" not in r:
            series[(r["pipeline"], r["preset"], r["variant"])].append(r)
    return {k: sorted(v, key=lambda r: r["height"] * r["width"]) for k, v in series.items()}


def _peak_gb(r: dict[str, Any]) -> float | None:
    peak = r.get("peak_cuda_bytes") or r.get("peak_tensor_bytes") or r.get("peak_rss_delta_bytes")
    return None if peak is None else peak / 1e9


def plot_results(data: dict[str, Any], path: Path) -> None:
    """Write a two-panel PNG (latency, peak memory; log-log against megapixels) to `path`."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CLIError("--plot needs matplotlib: pip install matplotlib") from None
    series = _series(data["results"])
    if not series:
        raise CLIError("no successful results to plot")
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    dashes = ["-", "--", ":", "-."]
    variants = sorted({k[2] for k in series})
    for (pipeline, preset, variant), rows in sorted(series.items()):
        color, marker = STYLE.get(pipeline, ("black", "x"))
        style = dict(color=color, marker=marker, linestyle=dashes[variants.index(variant) % len(dashes)],
                     label=f"{pipeline} {preset} {variant}")
        mp = [r["height"] * r["width"] / 1e6 for r in rows]
        ax_t.plot(mp, [r["latency_s"] for r in rows], **style)
        mem = [(x, _peak_gb(r)) for x, r in zip(mp, rows) if _peak_gb(r) is not None]
        if mem:
            ax_m.plot(*zip(*mem), **style)
    m = data["machine"]
    where = f"{m.get('gpu') or m.get('cpu')}, {m.get('cpu_cores')} cores, commit {m.get('commit')}"
    rows_all = [r for rows in series.values() for r in rows]
    sizes = sorted({(r["height"] * r["width"], f"{r['width']}x{r['height']}") for r in rows_all})
    for ax, ylabel in ((ax_t, "latency (s, median of warm runs)"), (ax_m, "peak memory (GB, weights included)")):
        ax.set_xscale("log")
        ax.set_xlabel("output size")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xticks([p / 1e6 for p, _ in sizes], [label for _, label in sizes])
        ax.minorticks_off()
    ax_t.set_yscale("log")
    ax_m.set_ylim(bottom=0)
    ax_t.legend(fontsize=7)
    fig.suptitle(f"GenDR-Pix pixel vs latent pipeline on {where}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
