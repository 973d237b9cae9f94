"""Text tables for the benchmark: one row per case, and pixel-vs-latent / variant-vs-reference ratios."""

from __future__ import annotations

from typing import Any

GB = 1e9


def _gb(n: float | None) -> str:
    return "-" if n is None else f"{n / GB:.2f}"


def _peak(r: dict[str, Any]) -> float | None:
    """The headline peak memory: CUDA allocator peak on CUDA, live-tensor peak elsewhere."""
    return r.get("peak_cuda_bytes") or r.get("peak_tensor_bytes")


def _activations(r: dict[str, Any]) -> float | None:
    """Peak memory above the weights: what the pipeline itself allocates, which is what moving from
    latent to pixel space changes (both hold the same UNet weights; at small sizes they dominate)."""
    peak, weights = _peak(r), r.get("weights_bytes")
    return None if peak is None or weights is None else peak - weights


def _load(r: dict[str, Any]) -> str:
    loads = [x[0] for x in (r.get("load_before"), r.get("load_after")) if x]
    return "-" if not loads else f"{max(loads):.1f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    fmt = lambda row: "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |"
    return "\n".join([fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, rows)])


def results_table(results: list[dict[str, Any]], ceilings: dict[str, float]) -> str:
    """Markdown table of every case. `ceilings`: dtype name -> matmul FLOP/s of this device."""
    header = ["pipeline", "preset", "output", "variant", "time s", "peak GB", "RSS GB", "TFLOP",
              "TFLOP/s", "floor s", "of floor", "load"]
    rows = []
    for r in results:
        size = f"{r['width']}x{r['height']}"
        base = [r["pipeline"], r["preset"], size, r["variant"]]
        if "error" in r:
            rows.append(base + [f"failed: {r['error'][:40]}"] + ["-"] * 7)
            continue
        ceiling = ceilings.get(r["variant"].split("+")[0])
        floor = r["flops"] / ceiling if ceiling else None
        rows.append(base + [
            f"{r['latency_s']:.3f}", _gb(_peak(r)), _gb(r.get("peak_rss_delta_bytes")), f"{r['flops'] / 1e12:.2f}",
            f"{r['achieved_flops_per_s'] / 1e12:.3f}", "-" if floor is None else f"{floor:.3f}",
            "-" if floor is None else f"{floor / r['latency_s']:.0%}", _load(r),
        ])
    return _table(header, rows)


def comparison_table(results: list[dict[str, Any]]) -> str:
    """Latent vs pixel for each (preset, size, variant): time ratio and peak-memory ratio."""
    ok = {(r["pipeline"], r["preset"], r["height"], r["width"], r["variant"]): r for r in results if "error" not in r}
    rows = []
    for (pipe, preset, h, w, variant), px in ok.items():
        lat = ok.get(("latent", preset, h, w, variant))
        if pipe != "pixel" or lat is None:
            continue
        mem = (_peak(px) / _peak(lat)) if _peak(px) and _peak(lat) else None
        px_act, lat_act = _activations(px), _activations(lat)
        act = px_act / lat_act if px_act and lat_act else None
        px_rss, lat_rss = px.get("peak_rss_delta_bytes"), lat.get("peak_rss_delta_bytes")
        rss = px_rss / lat_rss if px_rss and lat_rss else None
        rows.append([preset, f"{w}x{h}", variant, f"{px['latency_s']:.3f}", f"{lat['latency_s']:.3f}",
                     f"{lat['latency_s'] / px['latency_s']:.2f}x", _gb(_peak(px)), _gb(_peak(lat)),
                     "-" if mem is None else f"{mem:.2f}", "-" if rss is None else f"{rss:.2f}",
                     _gb(px_act), _gb(lat_act), "-" if act is None else f"{act:.2f}"])
    header = ["preset", "output", "variant", "pixel s", "latent s", "speed-up", "pixel GB", "latent GB",
              "mem ratio", "RSS ratio", "pixel act GB", "latent act GB", "act ratio"]
    return _table(header, rows) if rows else ""


def variant_table(results: list[dict[str, Any]], reference: str) -> str:
    """Each variant against `reference` (e.g. fp32) for the same pipeline, preset and size."""
    ok = [r for r in results if "error" not in r]
    refs = {(r["pipeline"], r["preset"], r["height"], r["width"]): r for r in ok if r["variant"] == reference}
    rows = []
    for r in ok:
        ref = refs.get((r["pipeline"], r["preset"], r["height"], r["width"]))
        if ref is None or r["variant"] == reference:
            continue
        mem = _peak(r) / _peak(ref) if _peak(r) and _peak(ref) else None
        rows.append([r["pipeline"], r["preset"], f"{r['width']}x{r['height']}", r["variant"],
                     f"{ref['latency_s'] / r['latency_s']:.2f}x", "-" if mem is None else f"{mem:.2f}"])
    header = ["pipeline", "preset", "output", "variant", f"speed-up vs {reference}", "peak mem ratio"]
    return _table(header, rows) if rows else ""


def memory_table(results: list[dict[str, Any]]) -> str:
    """Simulated peaks: weights, activations (peak above the weights) and pixel/latent ratios of both."""
    latent = {(r["preset"], r["height"], r["width"], r["variant"]): r for r in results if r["pipeline"] == "latent"}
    rows = []
    for r in results:
        lat = latent.get((r["preset"], r["height"], r["width"], r["variant"]))
        ratios = ["-", "-"]
        if lat is not None and r is not lat:
            ratios = [f"{_peak(r) / _peak(lat):.2f}", f"{_activations(r) / _activations(lat):.2f}"]
        rows.append([r["pipeline"], r["preset"], f"{r['width']}x{r['height']}", r["variant"], _gb(r["weights_bytes"]),
                     _gb(_activations(r)), _gb(_peak(r)), *ratios])
    header = ["pipeline", "preset", "output", "variant", "weights GB", "act GB", "peak GB", "peak vs latent",
              "act vs latent"]
    return _table(header, rows)
