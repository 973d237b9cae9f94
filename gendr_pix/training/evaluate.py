"""Evaluation: HR photos -> seeded degradations -> each upscaler -> metrics against the HR image.

Settings: "bicubic" (plain x4 bicubic downscale) and "realesrgan" (the second-order pipeline of
`degrade.py`, seeded per image, so every method sees the same inputs on every run). Metrics: PSNR and
SSIM on Y with a 4-px border crop, LPIPS (AlexNet), DISTS, NIQE (when its parameters are cached and
the crop is larger than 192 px), the grid-artifact score (output's energy at
the 8x8-grid frequencies over the ground truth's; 1 = like GT), the artifact scores `halo` (mean
overshoot beyond the ground truth's local range near its edges, 8-bit levels) and `false_edges` (edge
strength where the ground truth has none, % of its own; see `artifacts.py`), and wall time per image.
Artifacts hide in a set mean, so for grid, halo and false edges the worst photo is reported too.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gendr_pix import PLAIN, GenDRPix, Guidance, UpscaleOptions, resize, upscale

from .artifacts import false_edges, halo
from .data import desaturate, list_images, load_rgb
from .degrade import DegradeConfig, degrade
from .fourier import grid_score
from .metrics import psnr_y, ssim_y
from .niqe import PATCH, load_params, niqe
from .paths import MissingAssetError
from .perceptual import DISTS, LPIPS
from .references import NcnnUpscaler, available, missing_hint

log = logging.getLogger(__name__)

Upscaler = Callable[[Tensor], Tensor]
"""[1, 3, h, w] in [0, 1] -> [1, 3, 4h, 4w] in [0, 1]."""
SETTINGS = ("bicubic", "realesrgan")
METRICS = ("psnr", "ssim", "lpips", "dists", "niqe", "grid", "halo", "false_edges", "seconds")
WORST = ("grid", "halo", "false_edges")
"""Metrics whose worst photo is reported beside the mean (as `<metric>_worst`)."""


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    folder: str
    crop: int = 512
    """Centre crop of each HR photo (rounded down to a multiple of 32); 0 = the whole photo."""
    scale: int = 4
    seed: int = 0
    settings: tuple[str, ...] = SETTINGS
    cfg_scales: tuple[float, ...] = (0.0, 2.0)
    """Extra plain-CFG guidance scales to report besides w = 1 (w = 0 is the negative branch alone)."""
    padcfg_scales: tuple[float, ...] = (1.5,)
    ensembles: tuple[int, ...] = (2, 4)
    """Padding self-ensemble sizes to report besides the plain pass."""
    grid_filters: tuple[int, ...] = ()
    """Grid filter windows (px) to report on the plain pass (`UpscaleOptions.grid_filter`)."""
    options: tuple[str, ...] = ()
    """More settings of ours to report, each a spec for `options_from_spec`, e.g. "ensemble=2 antiring=1"."""
    references: bool = True
    threads: int = 2
    save_dir: str = ""
    """If set, write every output as PNG there (<setting>/<method>/<photo>.png)."""
    limit: int = 0
    grey: bool = False
    """Score on the luma of each photo (R = G = B): black-and-white material, which the photos of a
    small training set may not contain."""
    extra: dict = field(default_factory=dict)


def hr_crops(cfg: EvalConfig) -> list[tuple[str, Tensor]]:
    out = []
    for path in list_images(cfg.folder)[: cfg.limit or None]:
        img = load_rgb(path)
        img = desaturate(img, 0.0) if cfg.grey else img
        h, w = img.shape[-2:]
        m = 32
        ch, cw = (min(cfg.crop, h), min(cfg.crop, w)) if cfg.crop else (h, w)
        ch, cw = ch - ch % m, cw - cw % m
        y, x = (h - ch) // 2, (w - cw) // 2
        out.append((path.stem, img[:, y:y + ch, x:x + cw].contiguous()))
    return out


def degraded(hr: Tensor, setting: str, scale: int, seed: int, index: int) -> Tensor:
    cfg = DegradeConfig(kind="bicubic" if setting == "bicubic" else "realesrgan", scale=scale)
    return degrade(hr, cfg, np.random.default_rng([seed, 1000 + index]))[None]


def our_methods(model: GenDRPix, cfg: EvalConfig) -> dict[str, Upscaler]:
    """Our rows: the plain pass (the model's own output, artifact filters off) and its variants from
    --ensemble, --grid-filter, --cfg and --padcfg (each on the plain pass, as the older tables); the
    default settings; and each --options spec (the defaults with the named fields changed)."""
    def make(options: UpscaleOptions) -> Upscaler:
        return lambda lq: upscale(model, lq, options)

    s = float(cfg.scale)
    methods = {"GenDR-Pix small (w=1)": make(UpscaleOptions(scale=s, **PLAIN))}
    for k in cfg.ensembles:
        if k > 1:
            methods[f"GenDR-Pix small, ensemble x{k}"] = make(UpscaleOptions(scale=s, ensemble=k, **PLAIN))
    for px in cfg.grid_filters:
        if px:
            methods[f"GenDR-Pix small, grid filter {px} px"] = make(
                UpscaleOptions(scale=s, **{**PLAIN, "grid_filter": px}))
    for w in cfg.padcfg_scales:
        methods[f"GenDR-Pix small, PadCFG w={w:g}"] = make(
            UpscaleOptions(scale=s, guidance=Guidance(scale=w, mode="padcfg"), **PLAIN))
    for w in cfg.cfg_scales:
        methods[f"GenDR-Pix small, CFG w={w:g}"] = make(UpscaleOptions(scale=s, guidance=Guidance(scale=w), **PLAIN))
    methods[DEFAULTS_LABEL] = make(UpscaleOptions(scale=s))
    for spec in cfg.options:
        methods[f"GenDR-Pix small, {spec}"] = make(options_from_spec(spec, scale=s))
    return methods


DEFAULTS_LABEL = "GenDR-Pix small (defaults)"
"""The row of the default settings (`UpscaleOptions()`: grid filter and anti-ringing on)."""


SPEC_KEYS = {"ensemble": int, "antiring": float, "grid_filter": int, "color_fix": str, "guidance": float,
             "mode": str}


def options_from_spec(spec: str, scale: float | None = None) -> UpscaleOptions:
    """"ensemble=2 guidance=1.5 mode=padcfg color_fix=wavelet" -> UpscaleOptions (unnamed fields: the
    defaults, artifact filters included; "grid_filter=0 antiring=0" is the plain pass).
    Raises ValueError naming an unknown key or a bad value."""
    fields: dict = {}
    for item in spec.replace(",", " ").split():
        key, sep, value = item.partition("=")
        if not sep or key not in SPEC_KEYS:
            raise ValueError(f"setting {item!r} in {spec!r}: use key=value with a key of {', '.join(SPEC_KEYS)}")
        try:
            fields[key] = SPEC_KEYS[key](value)
        except ValueError:
            raise ValueError(f"setting {item!r} in {spec!r}: {value!r} is not a {SPEC_KEYS[key].__name__}") from None
    guidance = Guidance(scale=fields.pop("guidance", 1.0), mode=fields.pop("mode", "cfg"))
    return UpscaleOptions(scale=scale, guidance=guidance, **fields)


def all_methods(model: GenDRPix | None, cfg: EvalConfig) -> dict[str, Upscaler]:
    methods: dict[str, Upscaler] = {"bicubic": lambda lq: resize(lq, (lq.shape[-2] * cfg.scale,
                                                                     lq.shape[-1] * cfg.scale)).clamp(0, 1)}
    if cfg.references:
        found = available()
        if not found:
            log.warning("no reference upscalers: %s; comparing without them", missing_hint())
        methods.update({name: NcnnUpscaler(p, cfg.threads) for name, p in found.items()})
    if model is not None:
        methods.update(our_methods(model, cfg))
    return methods


def evaluate(model: GenDRPix | None, cfg: EvalConfig) -> dict:
    """Returns {"config", "load": (before, after), "results": {setting: {method: {metric: mean}}},
    "per_image": {setting: {method: {photo: {metric: value}}}}}."""
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return evaluate_methods(all_methods(model, cfg), cfg)
    finally:
        torch.set_num_threads(threads_before)


def evaluate_methods(methods: dict[str, Upscaler], cfg: EvalConfig) -> dict:
    """`evaluate` for any named upscalers (e.g. a settings sweep); same report layout."""
    lpips, dists = LPIPS("alexnet"), DISTS()
    photos = hr_crops(cfg)
    niqe_params = _niqe_params(photos)
    load_before = os.getloadavg()
    results: dict = {}
    per_image: dict = {}
    for setting in cfg.settings:
        if setting not in SETTINGS:
            raise ValueError(f"unknown setting {setting!r}; known: {SETTINGS}")
        per_image[setting] = {m: {} for m in methods}
        for index, (name, hr) in enumerate(photos):
            lq = degraded(hr, setting, cfg.scale, cfg.seed, index)
            for method, fn in methods.items():
                with torch.inference_mode():
                    t0 = time.perf_counter()
                    sr = fn(lq)
                    seconds = time.perf_counter() - t0
                    sr = sr[..., : hr.shape[-2], : hr.shape[-1]]
                    per_image[setting][method][name] = _score(sr, hr[None], lpips, dists, seconds, niqe_params)
                _maybe_save(cfg, setting, method, name, sr)
            log.info("%s: %s done", setting, name)
        results[setting] = {m: summarise(imgs) for m, imgs in per_image[setting].items()}
    gt_niqe = float(np.mean([_niqe(hr[None], niqe_params) for _, hr in photos]))
    return {"config": cfg.__dict__, "photos": [n for n, _ in photos], "load": (load_before, os.getloadavg()),
            "results": results, "per_image": per_image, "ground_truth_niqe": gt_niqe}


def summarise(per_photo: dict[str, dict[str, float]]) -> dict[str, float]:
    """Set means of every metric, plus the worst photo's value (the largest) for `WORST`."""
    rows = list(per_photo.values())
    out = {k: float(np.mean([r[k] for r in rows])) for k in METRICS}
    out.update({f"{k}_worst": float(np.max([r[k] for r in rows])) for k in WORST})
    return out


def _niqe_params(photos: list[tuple[str, Tensor]]):
    if any(min(hr.shape[-2:]) <= 2 * PATCH for _, hr in photos):
        log.info("crops of %d px or less: NIQE skipped", 2 * PATCH)
        return None
    try:
        return load_params()
    except MissingAssetError as e:
        log.warning("NIQE skipped: %s", e)
        return None


def _niqe(img: Tensor, params) -> float:
    if params is None:
        return float("nan")
    return niqe(img[0].clamp(0, 1).permute(1, 2, 0).double().numpy(), params)


def _score(sr: Tensor, hr: Tensor, lpips: LPIPS, dists: DISTS, seconds: float, niqe_params) -> dict[str, float]:
    if sr.shape != hr.shape:
        raise ValueError(f"upscaler returned {tuple(sr.shape)} for a ground truth of {tuple(hr.shape)}")
    return {"psnr": psnr_y(sr, hr).item(), "ssim": ssim_y(sr, hr).item(),
            "lpips": lpips(sr * 2 - 1, hr * 2 - 1).item(), "dists": dists(sr, hr).item(),
            "niqe": _niqe(sr, niqe_params), "grid": grid_score(sr, hr).item(), "halo": halo(sr, hr).item(),
            "false_edges": false_edges(sr, hr).item(), "seconds": seconds}


def _maybe_save(cfg: EvalConfig, setting: str, method: str, name: str, sr: Tensor) -> None:
    if not cfg.save_dir:
        return
    from PIL import Image

    safe = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in method)
    out = Path(cfg.save_dir) / setting / safe
    out.mkdir(parents=True, exist_ok=True)
    arr = (sr[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(arr).save(out / f"{name}.png")


def markdown_table(report: dict) -> str:
    """Two tables per setting: method | PSNR | SSIM | LPIPS | DISTS | NIQE | s/image, and method | halo |
    false edges | grid, each as mean / worst photo."""
    lines = []
    for setting, rows in report["results"].items():
        title = "bicubic x4" if setting == "bicubic" else "real-world (second-order) x4"
        lines += [f"**{title}**", "",
                  "| method | PSNR-Y ↑ | SSIM-Y ↑ | LPIPS ↓ | DISTS ↓ | NIQE ↓ | s / image |",
                  "|---|---|---|---|---|---|---|"]
        for method, m in rows.items():
            lines.append(f"| {method} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['lpips']:.4f} | {m['dists']:.4f} "
                         f"| {m['niqe']:.2f} | {m['seconds']:.3f} |")
        lines += ["", f"**{title}, artifacts** (mean / worst photo; 0 = like the ground truth, grid 1 = like it)", "",
                  "| method | halo (levels) ↓ | false edges (%) ↓ | grid |", "|---|---|---|---|"]
        for method, m in rows.items():
            cells = [f"{m[k]:.{d}f} / {m[k + '_worst']:.{d}f}"
                     for k, d in (("halo", 3), ("false_edges", 2), ("grid", 2))]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(f"Ground-truth NIQE: {report['ground_truth_niqe']:.2f}.")
    return "\n".join(lines)
